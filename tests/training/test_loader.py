"""The reference loader reads real shards: dynamic masking as BERT's, pair batches as shard laid them out."""

from __future__ import annotations

import numpy as np
import pytest

from tests.shard.test_pair_batches import _inputs
from twhin_data.runners import cli
from twhin_data.training.loader import mask_tokens, mlm_batches, pad, pair_batches


def test_mask_tokens_picks_fifteen_percent_and_never_special_tokens():
    rng = np.random.default_rng(0)
    ids = rng.integers(10, 500, size=(200, 100))
    ids[:, 0], ids[:, -1] = 0, 2
    attention = np.ones_like(ids)
    masked, labels = mask_tokens(ids, attention, rng, special={0, 1, 2}, mask_id=7, vocab_size=500)
    picked = labels != -100
    assert 0.13 < picked.mean() < 0.17
    assert not picked[:, 0].any() and not picked[:, -1].any()
    assert (labels[picked] == ids[picked]).all()
    assert 0.75 < (masked[picked] == 7).mean() < 0.85
    assert (masked[~picked] == ids[~picked]).all()
    padded, mask = pad([[5, 6], [7]], pad_id=1)
    assert padded.tolist() == [[5, 6], [7, 1]] and mask.tolist() == [[1, 1], [1, 0]]


@pytest.mark.slow
def test_loader_reads_the_shards_shard_wrote(tmp_path):
    base, _ = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["shard", f"--corpus={base}", f"--pairs={base}", f"--output={out}", "--pair_batch_size=16", "--log_level=WARNING"]
    assert cli.main(argv) == 0
    rows = 0
    for batch in mlm_batches(str(out), "train", batch_size=8):
        assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
        assert all(offsets[0] == 0 for offsets in batch["cls_positions"])
        rows += batch["input_ids"].shape[0]
    assert rows > 0
    batches = list(pair_batches(str(out), "train"))
    assert batches and all(len(b["tweet_id_a"]) <= 16 for b in batches)
    for b in batches:
        ends = b["tweet_id_a"] + b["tweet_id_b"]
        assert len(set(ends)) == len(ends)  # a batch never holds one tweet twice
        assert (b["input_ids_a"][:, 0] == 0).all()  # <s> at the CLS position
