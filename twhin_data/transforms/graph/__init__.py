"""graph: engagement logs and tweets -> engagements/, graph/ (PyTorch-BigGraph ready) and pairs/.

transform.py BuildGraph (dedupe, caps, indices); edges.py (vectorized edge-table helpers);
engagements.py (ReadEngagements); write.py (WriteGraph); pbg.py (PBG config and TSV edges);
pairs.py (co-engagement and embedding pairs) over pair_scoring.py; report.py."""
