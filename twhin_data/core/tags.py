"""Names of the tagged outputs every stage uses: one spelling for Beam DoFns and pooled steps alike."""

ERRORS = "errors"  # dead letters: core.errors.error_record dicts
STATS = "stats"  # partial statistics: dicts of counts, merged by summing
UNAVAILABLE = "unavailable"  # hydrate: IDs settled without a tweet
COUNTS = "counts"  # prepare: per-language counts that fix the resampling rates
AUTHORS = "authors"  # prepare --max_per_author: (author, (tweets, smallest hashes)) per dedup bucket
PARTS = "parts"  # graph: ((dataset, part), SliceRef) of output rows on their way to a part file
WRITTEN = "written"  # graph: one dict per file written by a pooled step (path, rows, bytes)
