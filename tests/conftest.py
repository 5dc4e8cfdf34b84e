"""Shared test fixtures: FnApiRunner options, the bundled sample, and ../shared (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SAMPLE_DIR = REPO / "twhin_data" / "data"


def fnapi_options(*extra: str) -> PipelineOptions:
    """In-memory FnApiRunner: never the Prism download that plain DirectRunner attempts."""
    return PipelineOptions(["--runner=FnApiRunner", *extra])


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip cleanly in a user's clone."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (a user's clone): skipping tests on recorded data")
    return SHARED


@pytest.fixture
def cassettes_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "tweepy-cassettes"
    if not path.is_dir():
        pytest.skip("../shared/data/tweepy-cassettes is not present")
    return path


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR
