"""Hashtag-prediction benchmark transforms: join labels with tweets, remove the label, vocabulary, write.

Element flow (one PTransform per concept)::

    label rows ──┐
                 ├─ JoinLabelsWithTweets ─> examples (text without the label) + errors
    tweet tables ┘          │
                  BuildLabelVocabulary (top-K labels per language, by kept examples)
                            │
                  AssignLabels (label_id, split; labels outside the top K -> errors)
                            │
                  WriteHashtagBenchmark (one GroupByKey per language; sorted, atomic Parquet)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core.errors import RecordError, error_record
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import HASHTAG, HASHTAG_LABELS
from twhin_data.text.label_leakage import label_key, strip_label
from twhin_data.transforms.benchmark_common import (
    SPLITS,
    TokenizerHandle,
    assign_splits,
    numeric_id_order,
    write_table,
)
from twhin_data.transforms.benchmark_io import ERRORS

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


class _ResolveExampleFn(beam.DoFn):
    """One tweet ID's label rows + tweet -> one example without its label, or dead letters."""

    def __init__(self, placeholders: bool):
        self._placeholders = placeholders
        self._counters: dict[str, object] = {}

    def _count(self, name: str, n: int = 1) -> None:
        if name not in self._counters:
            self._counters[name] = Metrics.counter(STAGE, name)
        self._counters[name].inc(n)

    def _reject(self, row: dict, reason: str, message: str) -> beam.pvalue.TaggedOutput:
        self._count(f"rejected_{reason}")
        return beam.pvalue.TaggedOutput(
            ERRORS, error_record(STAGE, _label_input(row), reason, message, row.get("source"))
        )

    def process(self, item: tuple[str, dict], candidate_keys: dict) -> Iterable:
        yield from self._resolve(item, candidate_keys)

    def _resolve(self, item: tuple[str, dict], candidate_keys: dict) -> Iterable:
        tweet_id, grouped = item
        rows = sorted(
            grouped["labels"], key=lambda r: (r["lang"], label_key(r["label"]), r["label"], r["source"])
        )
        if not rows:
            return  # a tweet nobody asked for (cannot happen after the ID filter)
        first = rows[0]
        for other in rows[1:]:
            if (other["lang"], label_key(other["label"])) == (first["lang"], label_key(first["label"])):
                self._count("duplicate_label_rows")
            else:
                yield self._reject(
                    other, "conflicting_label", f"tweet {tweet_id} already has label {first['label']!r}"
                )
        tweets = grouped["tweets"]
        if not tweets:
            yield self._reject(
                first, "unavailable", "tweet not in the hydrated tweets (deleted, protected or not hydrated)"
            )
            return
        self._count("tweets_found")
        tweet = min(tweets, key=lambda t: json.dumps(t, sort_keys=True, default=str))
        if tweet.get("text") is None:
            yield self._reject(first, "text_null", "the hydrated tweet has no text")
            return
        from twhin_data.text.normalize import normalize_v1

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
    """Label rows + hydrated tweet tables -> examples ``{tweet_id, lang, label, key, text, ...}``.

    Tweet tables are first cut down to the labelled IDs (one side input of the label IDs), so only
    labelled tweets reach the shuffle. Outputs: ``main`` examples, ``errors`` dead letters.
    """

    def __init__(self, *, placeholders: bool = True):
        super().__init__()
        self._placeholders = placeholders

    def expand(self, pcolls):
        labels, tweet_tables = pcolls
        wanted = (
            labels
            | "LabelIds" >> beam.Map(lambda r: r["tweet_id"])
            | "DistinctIds" >> beam.Distinct()
            | "IdList" >> beam.combiners.ToList()
            | "IdArray" >> beam.Map(lambda ids: pa.array(sorted(ids), pa.string()))
        )
        candidate_keys = (
            labels
            | "LangKey" >> beam.Map(lambda r: (r["lang"], label_key(r["label"])))
            | "DistinctLangKeys" >> beam.Distinct()
            | "KeysPerLang" >> beam.GroupByKey()
            | "KeySets" >> beam.MapTuple(lambda lang, keys: (lang, frozenset(keys)))
        )
        tweets = tweet_tables | "LabelledTweets" >> beam.FlatMap(
            tweets_with_ids, wanted=beam.pvalue.AsSingleton(wanted)
        )
        keyed_labels = labels | "KeyLabels" >> beam.Map(lambda r: (r["tweet_id"], r))
        return (
            {"labels": keyed_labels, "tweets": tweets}
            | "JoinOnTweetId" >> beam.CoGroupByKey()
            | "Resolve"
            >> beam.ParDo(
                _ResolveExampleFn(self._placeholders), candidate_keys=beam.pvalue.AsDict(candidate_keys)
            ).with_outputs(ERRORS, main="main")
        )


class _SpellingsFn(beam.CombineFn):
    """Counts a label's examples and its spellings (to pick the display form)."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, acc: Counter, label: str) -> Counter:
        acc[label] += 1
        return acc

    def merge_accumulators(self, accs: Iterable[Counter]) -> Counter:
        out: Counter = Counter()
        for acc in accs:
            out.update(acc)
        return out

    def extract_output(self, acc: Counter) -> tuple[int, str]:
        display = min(acc.items(), key=lambda kv: (-kv[1], kv[0]))[0] if acc else ""
        return sum(acc.values()), display


def top_labels(lang: str, entries: Iterable[tuple[str, tuple[int, str]]], k: int) -> tuple[str, dict]:
    """(lang, {key: (label_id, display label, count)}) for the `k` most frequent labels.

    Order: count descending, then key; label_id is the rank (0 = most frequent).
    """
    ranked = sorted(entries, key=lambda e: (-e[1][0], e[0]))[:k]
    return lang, {key: (i, display, count) for i, (key, (count, display)) in enumerate(ranked)}


class BuildLabelVocabulary(beam.PTransform):
    """Examples -> one ``(lang, {key: (label_id, label, count)})`` per language (top `max_labels`)."""

    def __init__(self, max_labels: int):
        super().__init__()
        self._max_labels = max_labels

    def expand(self, examples):
        k = self._max_labels
        return (
            examples
            | "LabelOfExample" >> beam.Map(lambda e: ((e["lang"], e["key"]), e["label"]))
            | "CountLabels" >> beam.CombinePerKey(_SpellingsFn())
            | "ByLang" >> beam.MapTuple(lambda lk, counted: (lk[0], (lk[1], counted)))
            | "LabelsPerLang" >> beam.GroupByKey()
            | "TopLabels" >> beam.Map(lambda item: top_labels(item[0], item[1], k))
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

    def process(self, example: dict, vocab: dict) -> Iterable:
        yield from self._assign(example, vocab)

    def _assign(self, example: dict, vocab: dict) -> Iterable:
        entry = vocab.get(example["lang"], {}).get(example["key"])
        if entry is None:
            self._not_top.inc()
            message = "label is not among the language's --max_labels_per_lang most frequent labels"
            yield beam.pvalue.TaggedOutput(
                ERRORS,
                error_record(STAGE, _label_input(example), "label_not_in_top_k", message, example["source"]),
            )
            return
        split = example.get("released_split") if self._released else None
        if self._released and split is None:
            self._no_split.inc()
            message = "--split released: the label file's name names no split (train/dev/test)"
            yield beam.pvalue.TaggedOutput(
                ERRORS,
                error_record(STAGE, _label_input(example), "no_released_split", message, example["source"]),
            )
            return
        label_id, display, _count = entry
        yield {
            "tweet_id": example["tweet_id"],
            "lang": example["lang"],
            "split": split,
            "text": example["text"],
            "label": display,
            "label_id": label_id,
        }


class AssignLabels(beam.PTransform):
    """Examples + vocabulary side input -> benchmark rows (HASHTAG fields but input_ids), and errors."""

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

    def process(self, item: tuple[str, Iterable[dict]], vocab: dict) -> Iterable[dict]:
        lang, rows = item
        rows = list(rows)
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
    """Benchmark rows -> ``<output>/<lang>/<split>.parquet`` + ``labels.parquet``; emits file infos.

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
            | "KeyByLang" >> beam.Map(lambda r: (r["lang"], r))
            | "RowsPerLang" >> beam.GroupByKey()
            | "WriteLanguage"
            >> beam.ParDo(
                _WriteLanguageFn(self._output, self._tokenizer, self._fractions, self._seed),
                vocab=beam.pvalue.AsDict(self._vocabulary),
            )
        )
