"""Beam-free building blocks: errors and dead letters, files, Parquet footers, IDs, output tags,
stable hashing, process pools, spill files, HTML reports."""
