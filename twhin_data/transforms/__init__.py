"""Beam building blocks: what every stage uses (io, parallel, combiners, metrics), and one sub-package
per stage. A stage's sub-package holds its PTransforms (transform.py and friends) and the Beam-free
steps they run (steps.py, table.py, tokenize.py, ...), which the --workers pool processes import
without Beam. Stage sub-packages never import each other (.importlinter)."""
