"""prepare: tweets -> corpus/ (normalized, language-tagged, filtered, deduplicated, resampled).

transform.py PrepareTweets wires the pooled steps (steps.py) with two shuffles; table.py normalizes
and language-tags one table; read.py plans and reads row-group tasks; dedup.py, resample.py;
stats.py and report.py build stats.json and report.html."""
