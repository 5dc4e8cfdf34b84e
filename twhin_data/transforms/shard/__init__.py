"""shard: corpus/ (and pairs/) -> tokenized, packed, deterministic Parquet shards.

transform.py ShardCorpus wires the pooled steps (steps.py) with one shuffle; tokenize.py
(tokenize_table, Beam-free); pairs.py ShardPairs wires the pair steps (pair_steps.py)."""
