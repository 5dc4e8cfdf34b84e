"""comply: removals (deleted, protected, suspended tweets, or a user's own list) reach every output.

removals.py reads the removal sources into one sorted array of IDs; units.py finds what under an
output folder holds tweet IDs; rewrite.py and benchmarks.py are the pure rewriters, one per kind of
file; manifests.py brings manifests up to date; transform.py wires them as a Beam job (scan, mark,
rewrite only the files that hold a removed tweet, finish)."""
