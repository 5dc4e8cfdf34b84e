"""Beam-free building blocks: errors and dead letters, files and completion markers, the output
lock, Parquet footers, IDs, output tags, stable hashing, process pools, spill files, HTML reports."""
