"""A small reference loader for the shards: padded MLM batches with dynamic masking, and pair batches.

    from twhin_data.training.loader import mlm_batches, pair_batches
    for batch in mlm_batches("OUT/shards", "stage2_train", batch_size=32):   # numpy arrays
        ...  # batch["input_ids"], ["attention_mask"], ["labels"] (-100: not masked), ["cls_positions"]
    for batch in pair_batches("OUT/shards", "train"):                         # B pairs, in file order
        ...  # ["input_ids_a"], ["attention_mask_a"], ["cls_a"], the same for b, ["tweet_id_a"], ...

MLM: each row packs whole tweets ``<s> ... </s>``; 15% of the non-special tokens are picked per
batch (80% become ``<mask>``, 10% a random token, 10% stay), BERT's recipe, with a seeded
generator, so masks differ between epochs (dynamic masking) but a run is reproducible.
``cls_positions`` lists each row's tweet starts (``tweet_offsets``): the paper pools each tweet at
its own ``<s>``. Pairs: rows are read in file order, `pair_batch_size` at a time (the manifest's),
so each batch is one of shard's contrastive batches (no tweet twice); each side is one tweet, whose
``<s>`` is at position 0. The pad, mask and special ids come from the manifest. numpy only; wrap
with ``torch.from_numpy`` in the training loop (bench/train_smoke.py does).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq


def manifest(folder: str) -> dict:
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _files(folder: str, dataset: str, split: str) -> list[str]:
    found = sorted(glob.glob(os.path.join(folder, dataset, f"{split}-*.parquet")))
    if not found:
        raise FileNotFoundError(f"no {dataset}/{split}-*.parquet under {folder}")
    return found


def pad(rows: list[list[int]], pad_id: int, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, attention mask), int64, right-padded to the longest row (or `length`)."""
    width = length or max((len(r) for r in rows), default=1)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row[:width]
        mask[i, : len(row)] = 1
    return ids, mask


def mask_tokens(
    ids: np.ndarray, attention: np.ndarray, rng: np.random.Generator, *, special: set[int], mask_id: int, vocab_size: int, prob: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's dynamic masking: (masked ids, labels with -100 where nothing is predicted)."""
    candidates = attention.astype(bool) & ~np.isin(ids, np.array(sorted(special), dtype=np.int64))
    picked = candidates & (rng.random(ids.shape) < prob)
    labels = np.where(picked, ids, -100)
    roll = rng.random(ids.shape)
    out = ids.copy()
    out[picked & (roll < 0.8)] = mask_id
    random_tokens = picked & (roll >= 0.8) & (roll < 0.9)
    out[random_tokens] = rng.integers(0, vocab_size, size=int(random_tokens.sum()))
    return out, labels


def mlm_batches(folder: str, split: str = "train", *, batch_size: int = 32, prob: float = 0.15, seed: int = 0) -> Iterator[dict]:
    """Padded, dynamically masked MLM batches of one split (``train``, ``stage2_train``, ...)."""
    info = manifest(folder)
    ids_map = info["tokenizer"]["special_ids"]
    special = {v for v in ids_map.values() if v is not None}
    rng = np.random.default_rng(seed)
    for path in _files(folder, "mlm", split):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["input_ids", "tweet_offsets"]):
            ids, attention = pad(batch.column("input_ids").to_pylist(), info["pad_id"])
            masked, labels = mask_tokens(
                ids, attention, rng, special=special, mask_id=ids_map["mask"], vocab_size=info["tokenizer"]["vocab_size"], prob=prob
            )
            yield {
                "input_ids": masked,
                "attention_mask": attention,
                "labels": labels,
                "cls_positions": batch.column("tweet_offsets").to_pylist(),
            }


def pair_batches(folder: str, split: str = "train") -> Iterator[dict]:
    """The contrastive batches of the pair shards, in order (B = the manifest's pair_batch_size)."""
    info = manifest(folder)
    size = (info.get("parameters") or {}).get("pair_batch_size") or 32
    for path in _files(folder, "pairs", split):
        table = pq.read_table(path, columns=["tweet_id_a", "tweet_id_b", "input_ids_a", "input_ids_b"])
        for start in range(0, table.num_rows, size):
            rows = table.slice(start, size)
            ids_a, mask_a = pad(rows.column("input_ids_a").to_pylist(), info["pad_id"])
            ids_b, mask_b = pad(rows.column("input_ids_b").to_pylist(), info["pad_id"])
            yield {
                "input_ids_a": ids_a,
                "attention_mask_a": mask_a,
                "cls_a": np.zeros(rows.num_rows, np.int64),
                "input_ids_b": ids_b,
                "attention_mask_b": mask_b,
                "cls_b": np.zeros(rows.num_rows, np.int64),
                "tweet_id_a": rows.column("tweet_id_a").to_pylist(),
                "tweet_id_b": rows.column("tweet_id_b").to_pylist(),
            }
