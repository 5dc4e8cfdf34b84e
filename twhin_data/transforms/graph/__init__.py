"""graph: engagement logs and tweets -> engagements/, graph/ (PyTorch-BigGraph ready) and pairs/.

Beam wiring: engagements.py (ReadEngagements), transform.py (BuildGraph), pairs.py (co-engagement
and embedding pairs), ann.py (distributed kNN), write.py (WriteRelations). Their pooled, Beam-free
steps: read_steps.py, build_steps.py, write_steps.py, pair_steps.py, ann_steps.py. Helpers:
edges.py (vectorized edge-table helpers), logs.py, pbg.py, pair_scoring.py, tweet_map.py; report.py."""
