"""Hashtag-prediction benchmark transforms: join labels with tweets, remove the label, vocabulary, write.

Element flow (one PTransform per concept; elements are batches of rows, never single rows)::

    label-row batches ──┐
                        ├─ JoinLabelsWithTweets (hash buckets of the tweet ID)
    tweet tables ───────┘     -> (lang, [examples: text without the label]) + errors
                  BuildLabelVocabulary (top-K labels per language, by kept examples)
                  AssignLabels (label_id; labels outside the top K -> errors)
                  WriteHashtagBenchmark (one GroupByKey per language; hashed splits; sorted, atomic Parquet)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core.errors import RecordError, error_record
from twhin_data.core.hashing import shard_of
from twhin_data.core.tags import ERRORS
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import HASHTAG, HASHTAG_LABELS
from twhin_data.text.label_leakage import label_key, strip_label
from twhin_data.text.normalize import normalize_v1
from twhin_data.transforms.benchmark.common import (
    SPLITS,
    TokenizerHandle,
    assign_splits,
    numeric_id_order,
    write_table,
)
from twhin_data.transforms.combiners import SetUnion, SumDicts
from twhin_data.transforms.metrics import Counters

STAGE = "benchmark_hashtag"
TWEET_COLUMNS = ["tweet_id", "text", "lang", "mentions", "urls"]


def _label_input(row: dict) -> str:
    return json.dumps(
        {k: row.get(k) for k in ("tweet_id", "lang", "label")}, ensure_ascii=False, sort_keys=True
    )


def tweets_with_ids(table: pa.Table, wanted: pa.Array) -> Iterable[tuple[str, dict]]:
    """(tweet_id, row) for the rows of `table` whose tweet_id is in `wanted`."""
    if table.num_rows == 0 or len(wanted) == 0:
        return
    keep = table.filter(pc.is_in(table.column("tweet_id"), value_set=wanted))
    for row in keep.to_pylist():
        yield row["tweet_id"], row


def bucketize(rows: list[dict], buckets: int) -> Iterable[tuple[int, list[dict]]]:
    """(bucket, rows) slices of `rows` by a stable hash of their tweet_id (the join key)."""
    if not rows:
        return
    shard = shard_of(pa.array([r["tweet_id"] for r in rows], pa.string()), buckets, "benchmark-join")
    slices: dict[int, list[dict]] = defaultdict(list)
    for row, b in zip(rows, shard.tolist(), strict=True):
        slices[b].append(row)
    yield from sorted(slices.items())


def labelled_tweet_slices(
    table: pa.Table, wanted: pa.Array, buckets: int
) -> Iterable[tuple[int, list[dict]]]:
    """The rows of a tweet table whose ID was asked for, as (bucket, rows) slices."""
    yield from bucketize([row for _id, row in tweets_with_ids(table, wanted)], buckets)


def _lang_keys(batch: list[dict]) -> Iterable[tuple[str, set]]:
    keys: dict[str, set] = defaultdict(set)
    for row in batch:
        keys[row["lang"]].add(label_key(row["label"]))
    yield from sorted(keys.items())


class _ResolveBucketFn(beam.DoFn):
    """One bucket's label rows + tweets -> ``(lang, [examples without their label])``, or dead letters."""

    def __init__(self, placeholders: bool):
        self._placeholders = placeholders
        self._counters = Counters(STAGE)

    def _count(self, name: str, n: int = 1) -> None:
        self._counters.inc(name, n)

    def _reject(self, row: dict, reason: str, message: str) -> beam.pvalue.TaggedOutput:
        self._count(f"rejected_{reason}")
        return beam.pvalue.TaggedOutput(
            ERRORS, error_record(STAGE, _label_input(row), reason, message, row.get("source"))
        )

    def process(self, item: tuple[int, dict], candidate_keys: dict) -> Iterable:
        _bucket, grouped = item
        labels: dict[str, list[dict]] = defaultdict(list)
        tweets: dict[str, list[dict]] = defaultdict(list)
        for batch in grouped["labels"]:
            for row in batch:
                labels[row["tweet_id"]].append(row)
        for batch in grouped["tweets"]:
            for row in batch:
                tweets[row["tweet_id"]].append(row)
        self._missing = {row["tweet_id"]: row["status"] for batch in grouped["unavailable"] for row in batch}
        examples: dict[str, list[dict]] = defaultdict(list)
        for tweet_id in sorted(labels, key=lambda t: (len(t), t)):
            for out in self._resolve(tweet_id, labels[tweet_id], tweets.get(tweet_id, []), candidate_keys):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    yield out
                else:
                    examples[out["lang"]].append(out)
        yield from sorted(examples.items())

    def _resolve(self, tweet_id: str, rows: list[dict], tweets: list[dict], candidate_keys: dict) -> Iterable:
        rows = sorted(rows, key=lambda r: (r["lang"], label_key(r["label"]), r["label"], r["source"]))
        first = rows[0]
        for other in rows[1:]:
            if (other["lang"], label_key(other["label"])) == (first["lang"], label_key(first["label"])):
                self._count("duplicate_label_rows")
            else:
                message = f"tweet {tweet_id} already has label {first['label']!r}"
                yield self._reject(other, "conflicting_label", message)
        if not tweets:
            status = self._missing.get(tweet_id)
            if status is None:
                yield self._reject(
                    first, "not_hydrated", "tweet ID is neither in tweets/ nor in unavailable/"
                )
            else:
                yield self._reject(first, "unavailable", f"hydrate settled this ID as {status}")
            return
        self._count("tweets_found")
        # One row per ID normally; a deterministic pick among duplicate hydrate rows.
        tweet = (
            tweets[0]
            if len(tweets) == 1
            else min(tweets, key=lambda t: json.dumps(t, sort_keys=True, default=str))
        )
        if tweet.get("text") is None:
            yield self._reject(first, "text_null", "the hydrated tweet has no text")
            return
        try:
            text = normalize_v1(
                tweet["text"],
                mentions=tweet.get("mentions"),
                urls=tweet.get("urls"),
                placeholders=self._placeholders,
            )
        except RecordError as exc:
            yield self._reject(first, exc.error_type, exc.message)
            return
        result = strip_label(text, first["label"], candidate_keys.get(first["lang"], frozenset()))
        if result.reason is not None:
            yield self._reject(first, result.reason, result.detail)
            return
        yield {**first, "key": label_key(first["label"]), "text": result.text}


class JoinLabelsWithTweets(beam.PTransform):
    """(label-row batches, tweet tables, unavailable tables) -> ``(lang, [examples])`` batches, and errors.

    The unavailable tables (hydrate's ``unavailable/``: tweet_id, status) tell a tweet that hydrate
    settled as missing (``unavailable``, with its status) from an ID never hydrated (``not_hydrated``).

    Tweet tables are first cut down to the labelled IDs (one side input of the label IDs), then
    both sides travel as slices of rows keyed by one of `buckets` hash buckets of the tweet ID,
    so the join is one shuffle of a few hundred elements, not one element per row.
    Examples are ``{tweet_id, lang, label, key, text, released_split, source}``.
    """

    def __init__(self, *, placeholders: bool = True, buckets: int = 64):
        super().__init__()
        self._placeholders = placeholders
        self._buckets = buckets

    def expand(self, pcolls):
        labels, tweet_tables, unavailable_tables = pcolls
        wanted = (
            labels
            | "LabelIds" >> beam.Map(lambda batch: [r["tweet_id"] for r in batch])
            | "AllIds" >> beam.CombineGlobally(SetUnion())
            | "IdArray" >> beam.Map(lambda ids: pa.array(sorted(ids), pa.string()))
        )
        candidate_keys = (
            labels
            | "LangKeys" >> beam.FlatMap(_lang_keys)
            | "KeysPerLang" >> beam.CombinePerKey(SetUnion())
            | "KeySets" >> beam.Map(lambda kv: (kv[0], frozenset(kv[1])))
        )
        tweets = tweet_tables | "LabelledTweets" >> beam.FlatMap(
            labelled_tweet_slices, wanted=beam.pvalue.AsSingleton(wanted), buckets=self._buckets
        )
        missing = unavailable_tables | "UnavailableIds" >> beam.FlatMap(
            labelled_tweet_slices, wanted=beam.pvalue.AsSingleton(wanted), buckets=self._buckets
        )
        label_slices = labels | "LabelSlices" >> beam.FlatMap(bucketize, buckets=self._buckets)
        return (
            {"labels": label_slices, "tweets": tweets, "unavailable": missing}
            | "JoinOnBucket" >> beam.CoGroupByKey()
            | "Resolve"
            >> beam.ParDo(
                _ResolveBucketFn(self._placeholders), candidate_keys=beam.pvalue.AsDict(candidate_keys)
            ).with_outputs(ERRORS, main="main")
        )


def top_labels(lang: str, spellings: Counter, k: int) -> tuple[str, dict]:
    """(lang, {key: (label_id, display label, count)}) for the `k` most frequent labels.

    `spellings` counts examples per (key, spelling). Order: count descending, then key;
    label_id is the rank (0 = most frequent); the display label is the key's most common spelling.
    """
    counts: Counter = Counter()
    display: dict[str, tuple[int, str]] = {}
    for (key, spelling), n in spellings.items():
        counts[key] += n
        best = display.get(key)
        if best is None or (-n, spelling) < (-best[0], best[1]):
            display[key] = (n, spelling)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return lang, {key: (i, display[key][1], n) for i, (key, n) in enumerate(ranked)}


class BuildLabelVocabulary(beam.PTransform):
    """``(lang, [examples])`` -> one ``(lang, {key: (label_id, label, count)})`` per language (top `max_labels`)."""

    def __init__(self, max_labels: int):
        super().__init__()
        self._max_labels = max_labels

    def expand(self, examples):
        k = self._max_labels
        return (
            examples
            | "CountBatch" >> beam.Map(lambda kv: (kv[0], Counter((e["key"], e["label"]) for e in kv[1])))
            | "CountLabels" >> beam.CombinePerKey(SumDicts())
            | "TopLabels" >> beam.Map(lambda kv: top_labels(kv[0], kv[1], k))
        )


class _AssignFn(beam.DoFn):
    """Adds label_id and the canonical label; labels outside the top K go to errors.

    With released splits (`released` True) the split named by the label file is kept, and rows
    from files naming none are rejected; otherwise the writer assigns hashed splits.
    """

    def __init__(self, released: bool):
        self._released = released
        self._not_top = Metrics.counter(STAGE, "rejected_label_not_in_top_k")
        self._no_split = Metrics.counter(STAGE, "rejected_no_released_split")

    def process(self, item: tuple[str, list[dict]], vocab: dict) -> Iterable:
        lang, examples = item
        rows = []
        for example in examples:
            entry = vocab.get(lang, {}).get(example["key"])
            split = example.get("released_split") if self._released else None
            if entry is None:
                self._not_top.inc()
                reason, message = (
                    "label_not_in_top_k",
                    "label is not among the --max_labels_per_lang most frequent",
                )
            elif self._released and split is None:
                self._no_split.inc()
                reason, message = "no_released_split", "--split released: the label file names no split"
            else:
                label_id, display, _count = entry
                rows.append({**example, "split": split, "label": display, "label_id": label_id})
                continue
            record = error_record(STAGE, _label_input(example), reason, message, example["source"])
            yield beam.pvalue.TaggedOutput(ERRORS, record)
        if rows:
            yield lang, rows


class AssignLabels(beam.PTransform):
    """``(lang, [examples])`` + vocabulary side input -> ``(lang, [benchmark rows])``, and errors."""

    def __init__(self, vocabulary, *, released: bool = False):
        super().__init__()
        self._vocabulary = vocabulary
        self._released = released

    def expand(self, examples):
        return examples | "Assign" >> beam.ParDo(
            _AssignFn(self._released), vocab=beam.pvalue.AsDict(self._vocabulary)
        ).with_outputs(ERRORS, main="main")


class _WriteLanguageFn(beam.DoFn):
    """Writes one language's ``{train,validation,test}.parquet`` and ``labels.parquet``."""

    def __init__(
        self, output: str, tokenizer: str | None, fractions: tuple[float, float, float] | None, seed: int
    ):
        self._output = output
        self._tokenizer_path = tokenizer
        self._fractions = fractions
        self._seed = seed
        self._kept = {split: Metrics.counter(STAGE, f"kept_{split}") for split in SPLITS}

    def setup(self) -> None:
        self._tokenizer = TokenizerHandle(self._tokenizer_path)

    def process(self, item: tuple[str, Iterable[list[dict]]], vocab: dict) -> Iterable[dict]:
        lang, batches = item
        rows = [row for batch in batches for row in batch]
        if self._fractions is not None:
            splits = assign_splits([r["tweet_id"] for r in rows], self._fractions, self._seed)
            rows = [{**r, "split": s} for r, s in zip(rows, splits, strict=True)]
        for split in SPLITS:
            part = [r for r in rows if r["split"] == split]
            part = [part[i] for i in numeric_id_order([r["tweet_id"] for r in part])]
            ids = self._tokenizer.encode([r["text"] for r in part])
            if ids is not None:
                part = [{**r, "input_ids": x} for r, x in zip(part, ids, strict=True)]
            self._kept[split].inc(len(part))
            yield write_table(self._output, lang, split, to_table(part, HASHTAG))
        labels = [
            {"lang": lang, "label_id": i, "label": d, "count": c}
            for (i, d, c) in sorted(vocab[lang].values())
        ]
        yield write_table(self._output, lang, "labels", to_table(labels, HASHTAG_LABELS))


class WriteHashtagBenchmark(beam.PTransform):
    """``(lang, [rows])`` -> ``<output>/<lang>/<split>.parquet`` + ``labels.parquet``; emits file infos.

    One GroupByKey on language gathers each language's rows (the paper's sizes: ~20k per
    language) so each file is written once, sorted by tweet ID: the same bytes on every runner.
    """

    def __init__(
        self,
        output: str,
        vocabulary,
        *,
        tokenizer: str | None = None,
        fractions: tuple[float, float, float] | None = (0.8, 0.1, 0.1),
        seed: int = 0,
    ):
        super().__init__()
        self._output = output
        self._vocabulary = vocabulary
        self._tokenizer = tokenizer
        self._fractions = fractions  # None: rows carry their released split
        self._seed = seed

    def expand(self, rows):
        return (
            rows
            | "RowsPerLang" >> beam.GroupByKey()
            | "WriteLanguage"
            >> beam.ParDo(
                _WriteLanguageFn(self._output, self._tokenizer, self._fractions, self._seed),
                vocab=beam.pvalue.AsDict(self._vocabulary),
            )
        )
