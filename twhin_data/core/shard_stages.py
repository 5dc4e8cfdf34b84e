"""Split labels of two-stage shards (`shard --engaged`) and the manifest's ``stages`` section.

A two-stage MLM split label is ``stage1_train``, ``stage1_validation``, ``stage2_train`` or
``stage2_validation``; a one-stage one is ``train`` or ``validation``. shard writes the manifest
and comply rewrites it, so both read the labels here.
"""

from __future__ import annotations


def stage_name(label: str) -> str | None:
    """``stage2_train`` -> ``stage2``; a plain split has no stage."""
    return label.split("_", 1)[0] if label.startswith("stage") else None


def split_name(label: str) -> str:
    """``stage2_train`` -> ``train``."""
    return label.split("_", 1)[1] if label.startswith("stage") else label


def stages_section(splits: dict[str, dict]) -> dict:
    """``{stageN: {"mlm": {split: entry}, ("pairs": {...} for stage 2)}}`` from the manifest's
    ``splits``; empty for one-stage shards."""
    stages: dict[str, dict] = {}
    for label, entry in splits.get("mlm", {}).items():
        name = stage_name(label)
        if name:
            stages.setdefault(name, {"mlm": {}})["mlm"][split_name(label)] = entry
    if "stage2" in stages and "pairs" in splits:
        stages["stage2"]["pairs"] = splits["pairs"]
    return dict(sorted(stages.items()))
