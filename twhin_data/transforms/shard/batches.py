"""Contrastive-ready pair shards: rows laid out as batches of B pairs in which no tweet repeats.

NT-Xent (the paper's social loss) uses the other tweets of a batch as negatives, so a batch that
holds one tweet twice (a hub tweet in several pairs) teaches the model that a tweet is unlike
itself. Two steps make every B consecutive rows of a pair shard a valid batch:

1. the cap (`pair_steps.cap_pairs`, on a partition of the tweets): a tweet keeps its
   ``--max_pairs_per_tweet`` best-scoring pairs (ties: lower partner ID); a pair beyond the cap of
   either of its tweets is dropped and counted (``pair_over_tweet_cap``).
2. `pack` (inside each shard's writer): the shard's pairs, in their hash order (so languages mix
   as they do in the pairs), go first-fit into up to `OPEN` open batches that hold neither of its
   tweets nor, where the corpus knows them (``author_id``), either tweet's author (a pair of two
   tweets by one author is fine on its own); a pair that fits none waits and is tried again as batches fill. Only full batches are
   written; what is left at the end of a shard (fewer than B pairs, or pairs that conflict with
   every open batch) is counted (``pair_unplaced``), never silently dropped. A shard file thus holds
   whole batches, and a reader that takes B rows in order gets a valid batch.

Pure functions, no Beam.
"""

from __future__ import annotations

from array import array

import numpy as np

#: Batches held open at once while packing a shard (first fit among them).
OPEN = 64
#: Rows whose codes become Python lists at once (the codes stay one numpy array otherwise).
BLOCK = 65_536


def pack(ends: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows in batch order, rows left out)`` as int64 row indices, for rows given as their "ends":
    one row of integer codes per pair (`pair_steps.batch_ends`: both tweets and their authors;
    codes of tweets and of authors never collide, and an unknown author has a code of its own that
    no other row holds). Every `batch_size` consecutive output rows (from the first) share no code:
    no tweet twice, no author in two pairs; the last batch may be short. `ends` must come in a
    deterministic order; the result is then deterministic."""
    n = len(ends)
    if batch_size <= 1:
        return np.arange(n, dtype=np.int64), np.zeros(0, np.int64)
    done = array("q")  # rows of the full batches, in the order the batches filled
    open_batches: list[tuple[set[int], list[int]]] = []
    waiting: list[tuple[int, list[int]]] = []

    def place(row: int, codes: list[int]) -> bool:
        for i, (taken, members) in enumerate(open_batches):
            if not taken.isdisjoint(codes):
                continue
            taken.update(codes)
            members.append(row)
            if len(members) == batch_size:
                done.extend(members)
                del open_batches[i]
            return True
        if len(open_batches) < OPEN:
            open_batches.append((set(codes), [row]))
            return True
        return False

    for start in range(0, n, BLOCK):
        for row, codes in enumerate(ends[start : start + BLOCK].tolist(), start):
            if not place(row, codes):
                waiting.append((row, codes))
            elif waiting and len(open_batches) < OPEN:  # a batch closed: room for the waiting rows
                waiting = [w for w in waiting if not place(*w)]
    waiting = [w for w in waiting if not place(*w)]
    if open_batches:  # the fullest open batch ends the file as one short (still valid) batch
        last = max(range(len(open_batches)), key=lambda i: (len(open_batches[i][1]), -i))
        done.extend(open_batches.pop(last)[1])
    left = [row for row, _ in waiting] + [row for _, members in open_batches for row in members]
    return np.frombuffer(done, np.int64).copy(), np.asarray(left, np.int64)
