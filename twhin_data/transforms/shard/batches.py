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

from collections.abc import Sequence

#: Batches held open at once while packing a shard (first fit among them).
OPEN = 64


def pack(ends: Sequence[Sequence[int]], batch_size: int) -> tuple[list[int], list[int]]:
    """``(rows in batch order, rows left out)`` as row indices, for rows given as their "ends": the
    integer codes of both tweets and of their known authors (codes of tweets and of authors never
    collide). Every `batch_size` consecutive output rows (from the first) share no code: no tweet
    twice, no author in two pairs; the last batch may be short. `ends` must come in a deterministic
    order; the result is then deterministic."""
    if batch_size <= 1:
        return list(range(len(ends))), []
    done: list[list[int]] = []
    open_batches: list[tuple[set[int], list[int]]] = []
    waiting: list[int] = []

    def place(row: int) -> bool:
        codes = ends[row]
        for i, (taken, members) in enumerate(open_batches):
            if any(c in taken for c in codes):
                continue
            taken.update(codes)
            members.append(row)
            if len(members) == batch_size:
                done.append(members)
                del open_batches[i]
            return True
        if len(open_batches) < OPEN:
            open_batches.append((set(codes), [row]))
            return True
        return False

    for row in range(len(ends)):
        if not place(row):
            waiting.append(row)
        elif waiting and len(open_batches) < OPEN:  # a batch closed: room for the waiting rows
            waiting = [w for w in waiting if not place(w)]
    waiting = [w for w in waiting if not place(w)]
    if open_batches:  # the fullest open batch ends the file as one short (still valid) batch
        last = max(range(len(open_batches)), key=lambda i: (len(open_batches[i][1]), -i))
        done.append(open_batches.pop(last)[1])
    left = waiting + [row for _, members in open_batches for row in members]
    return [row for batch in done for row in batch], left
