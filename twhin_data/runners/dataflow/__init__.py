"""Dataflow: the runner profile (profile.py), submitting and the Flex Template entry (flex.py), and the
offline job-spec check (check.py, inspect.py)."""
