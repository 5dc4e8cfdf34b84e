"""Shared test fixtures: FnApiRunner options, the bundled sample, and ../shared (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SAMPLE_DIR = REPO / "twhin_data" / "data"


@pytest.fixture(autouse=True, scope="session")
def _private_tempdir(tmp_path_factory):
    """Temporary files of the code under test (the X API pacing state is one directory per token
    and base URL, and every test's mock server has its own) go under pytest's temp directory,
    which pytest prunes, instead of piling up in the machine's /tmp."""
    import os
    import tempfile

    path = str(tmp_path_factory.mktemp("tmp"))
    saved_env, saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = path, path
    yield
    tempfile.tempdir = saved
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


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
