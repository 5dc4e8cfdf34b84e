"""`PickUserRecords`: the engagement benchmark's (user embedding, engaged tweet) records (paper 3.2).

Each user embedding is used in at most ``per_user`` records (the paper: one, for privacy); the
record keeps the user's other engaged tweets of its language, never drawn as its negatives.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.tags import ERRORS
from twhin_data.schemas.benchmark import ENGAGEMENT_PICKS, USER_EMBEDDINGS, USER_ENGAGEMENTS
from twhin_data.transforms.benchmark import engagement_steps as core
from twhin_data.transforms.benchmark.common import append_row, column_lists, concat
from twhin_data.transforms.benchmark.engagement_read import STAGE, dead_letter, embedding_slices
from twhin_data.transforms.combiners import SumDicts
from twhin_data.transforms.metrics import Counters


class _PickRecordsFn(beam.DoFn):
    """One user bucket's engagements + embeddings -> ``(lang, ENGAGEMENT_PICKS)``: at most `per_user` per user."""

    def __init__(self, per_user: int, seed: int):
        self._per_user = per_user
        self._seed = seed
        self._counters = Counters(STAGE)

    def process(self, item: tuple[int, dict], dim: int) -> Iterable:
        _bucket, grouped = item
        engagements = concat(grouped["engagements"], USER_ENGAGEMENTS)
        columns = column_lists(engagements, ["user_id", "tweet_id", "lang"])
        of_user: dict[str, list[int]] = defaultdict(list)
        for i, user in enumerate(columns["user_id"]):
            of_user[user].append(i)
        embeddings = concat(grouped["embeddings"], USER_EMBEDDINGS)
        vectors = embeddings.column("embedding")
        embedding_rows: dict[str, list[int]] = defaultdict(list)
        for i, user in enumerate(embeddings.column("user_id").to_pylist()):
            embedding_rows[user].append(i)
        problems = [
            given or computed
            for given, computed in zip(
                embeddings.column("problem").to_pylist(), core.embedding_problems(vectors, dim), strict=True
            )
        ]
        picks: dict[str, tuple[list, list, list, list]] = {}  # lang -> engagement rows, user keys, vectors, excludes
        for user in sorted(of_user, key=lambda u: (len(u), u)):
            rows = of_user[user]
            found = embedding_rows.get(user, [])
            if len(found) > 1:
                self._counters.inc("duplicate_user_embeddings", len(found) - 1)
                found = [min(found, key=lambda k: json.dumps(vectors[k].as_py()))]
            problem = problems[found[0]] if found else "no embedding for this user"
            if problem:
                reason = "user_embedding_missing" if not found else "bad_user_embedding"
                self._counters.inc(f"rejected_{reason}", len(rows))
                yield dead_letter({"user_engagements": len(rows)}, reason, problem)
                continue
            by_tweet = {columns["tweet_id"][i]: i for i in rows}
            kept, dropped = core.choose_records(user, sorted(by_tweet), self._per_user, self._seed)
            self._counters.inc("rejected_user_already_used", len(dropped))
            key = core.user_key(user, self._seed)
            for tweet_id in kept:
                i = by_tweet[tweet_id]
                lang = columns["lang"][i]
                exclude = sorted(t for t, o in by_tweet.items() if t != tweet_id and columns["lang"][o] == lang)
                append_row(picks.setdefault(lang, ([], [], [], [])), i, key, found[0], exclude)
        for lang, (rows, keys, vector_rows, excludes) in sorted(picks.items()):
            chosen = engagements.take(pa.array(rows, pa.int64()))
            table = {
                "tweet_id": chosen.column("tweet_id"),
                "split": chosen.column("split"),
                "user_key": pa.array(keys, pa.int64()),
                "user_emb": vectors.take(pa.array(vector_rows, pa.int64())),
                "exclude": pa.array(excludes, pa.list_(pa.string())),
            }
            yield lang, pa.table(table, schema=ENGAGEMENT_PICKS)


def _length_counts(item: tuple[int, pa.Table]) -> dict:
    lengths = pc.list_value_length(item[1].column("embedding")).fill_null(-1)
    return dict(Counter(lengths.to_pylist()))


class PickUserRecords(beam.PTransform):
    """(user-bucket engagement slices, embedding tables) -> ``(lang, [records])`` and errors.

    The embedding dimension is the most common one in the files; other lengths are rejected.
    """

    def __init__(self, *, per_user: int, seed: int, buckets: int = 64):
        super().__init__()
        self._per_user = per_user
        self._seed = seed
        self._buckets = buckets

    def expand(self, pcolls):
        engagements, embedding_tables = pcolls
        parsed = embedding_tables | "EmbeddingSlices" >> beam.FlatMap(
            embedding_slices, buckets=self._buckets
        ).with_outputs(ERRORS, main="main")
        dim = (
            parsed.main
            | "EmbeddingLengths" >> beam.Map(_length_counts)
            | "AllLengths" >> beam.CombineGlobally(SumDicts())
            | "CommonLength"
            >> beam.Map(lambda c: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] if c else 0)
        )
        records = (
            {"engagements": engagements, "embeddings": parsed.main}
            | "JoinEmbeddings" >> beam.CoGroupByKey()
            | "PickRecords"
            >> beam.ParDo(
                _PickRecordsFn(self._per_user, self._seed), dim=beam.pvalue.AsSingleton(dim)
            ).with_outputs(ERRORS, main="main")
        )
        return records.main, (parsed[ERRORS], records[ERRORS]) | "EmbeddingErrors" >> beam.Flatten()


