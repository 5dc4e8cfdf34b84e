"""benchmark: the paper's hashtag and engagement prediction datasets.

hashtag.py and engagement.py (the two builders); common.py (splits, tokenizer, per-language files,
dataset card); read.py (label files, tweets); engagement_read.py (engagement logs, user embeddings);
engagement_steps.py (Beam-free sampling and candidates); report.py."""
