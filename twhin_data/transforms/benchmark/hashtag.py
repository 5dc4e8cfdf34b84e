"""Hashtag-prediction benchmark transforms: join labels with tweets, remove the label, vocabulary, write.

Element flow (one PTransform per concept; rows move in Arrow tables or spill-file slices, never one by one)::

    label-row tables ───┐
                        ├─ JoinLabelsWithTweets (hash buckets of the tweet ID)
    tweet tables ───────┘     -> (lang, examples slice: text without the label) + errors
                  BuildLabelVocabulary (top-K labels per language, by kept examples)
                  WriteHashtagBenchmark (one GroupByKey per language; label_id, labels outside the
                                         top K -> errors; hashed splits; sorted, atomic Parquet)

Rows cross the shuffles as Arrow IPC spill files under ``OUTPUT/.partial/.spill`` (common.spill_slices):
the runner moves ``(key, SliceRef)`` references only.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import RecordError, error_record
from twhin_data.core.spill import SliceRef, SliceWriter, read_slices
from twhin_data.core.tags import ERRORS
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import HASHTAG, HASHTAG_EXAMPLES, HASHTAG_LABELS, LABEL_ROWS, TWEET_INPUT
from twhin_data.schemas.tweets import UNAVAILABLE
from twhin_data.text.label_leakage import strip_label
from twhin_data.text.normalize import normalize_v1
from twhin_data.transforms.benchmark.common import (
    SPLITS,
    TokenizerHandle,
    assign_splits,
    column_lists,
    first_index,
    numeric_id_order,
    row_of,
    spill_slices,
    spill_tweet_slices,
    write_table,
)
from twhin_data.transforms.combiners import IdUnion, SetUnion, SumDicts
from twhin_data.transforms.metrics import Counters

STAGE = "benchmark_hashtag"
_SALT = "benchmark-join"
_WRITTEN = [f.name for f in HASHTAG if f.name != "input_ids"]  # the columns of assign_labels' rows
_MISSING = pa.schema([UNAVAILABLE.field("tweet_id"), UNAVAILABLE.field("status")])  # hydrate's unavailable/


def _label_input(row: dict) -> str:
    return json.dumps(
        {k: row.get(k) for k in ("tweet_id", "lang", "label")}, ensure_ascii=False, sort_keys=True
    )


def _lang_keys(table: pa.Table) -> list[tuple[str, set]]:
    keys: dict[str, set] = defaultdict(set)
    for lang, key in zip(table.column("lang").to_pylist(), table.column("key").to_pylist(), strict=True):
        keys[lang].add(key)
    return sorted(keys.items())


class _ResolveBucketFn(beam.DoFn):
    """One bucket's label rows + tweets -> ``(lang, SliceRef of its examples without their label)``, or
    dead letters. The examples of every language go to one spill file per bucket under `folder`.

    The loop reads column lists (no row dicts): one label row and one tweet per ID is the fast path;
    repeated label rows (duplicates, conflicts) and repeated hydrate rows take the careful one.
    """

    def __init__(self, placeholders: bool, folder: str):
        self._placeholders = placeholders
        self._folder = folder
        self._counters = Counters(STAGE)

    def _reject(self, row: dict, reason: str, message: str) -> beam.pvalue.TaggedOutput:
        self._counters.inc(f"rejected_{reason}")
        return beam.pvalue.TaggedOutput(
            ERRORS, error_record(STAGE, _label_input(row), reason, message, row.get("source"))
        )

    def process(self, item: tuple[int, dict], candidate_keys: dict) -> Iterable:
        bucket, grouped = item
        label_table = read_slices(grouped["labels"], LABEL_ROWS)
        labels = column_lists(label_table, ["tweet_id", "lang", "label"])  # the rest only for dead letters
        tweet_table = read_slices(grouped["tweets"], TWEET_INPUT)
        tweets = column_lists(tweet_table, ["tweet_id", "text", "mentions", "urls"])
        missing = column_lists(read_slices(grouped["unavailable"], _MISSING), ["tweet_id", "status"])
        missing = dict(zip(missing["tweet_id"], missing["status"], strict=True))
        label_row = functools.partial(row_of, label_table)
        first_label, repeated_labels = first_index(labels["tweet_id"])
        first_tweet, repeated_tweets = first_index(tweets["tweet_id"])
        texts, mentions, urls = tweets["text"], tweets["mentions"], tweets["urls"]
        langs, label_names = labels["lang"], labels["label"]
        kept: dict[str, tuple[list[int], list[str]]] = {}  # lang -> (label rows kept, their texts)
        found = duplicates = 0
        for tweet_id, i in first_label.items():
            if tweet_id in repeated_labels:
                i, rejects, dups = self._first_label(tweet_id, repeated_labels[tweet_id], label_row)
                duplicates += dups
                yield from rejects
            j = first_tweet.get(tweet_id)
            if j is None:
                status = missing.get(tweet_id)
                if status is None:
                    message = "tweet ID is neither in tweets/ nor in unavailable/"
                    yield self._reject(label_row(i), "not_hydrated", message)
                else:
                    yield self._reject(label_row(i), "unavailable", f"hydrate settled this ID as {status}")
                continue
            found += 1
            if tweet_id in repeated_tweets:  # a deterministic pick among duplicate hydrate rows
                j = min(
                    repeated_tweets[tweet_id],
                    key=lambda k: json.dumps(row_of(tweet_table, k), sort_keys=True, default=str),  # conformed columns
                )
            if texts[j] is None:
                yield self._reject(label_row(i), "text_null", "the hydrated tweet has no text")
                continue
            try:
                text = normalize_v1(texts[j], mentions=mentions[j], urls=urls[j], placeholders=self._placeholders)
            except RecordError as exc:
                yield self._reject(label_row(i), exc.error_type, exc.message)
                continue
            lang = langs[i]
            result = strip_label(text, label_names[i], candidate_keys.get(lang, frozenset()))
            if result.reason is not None:
                yield self._reject(label_row(i), result.reason, result.detail)
                continue
            rows, out_texts = kept.get(lang) or kept.setdefault(lang, ([], []))
            rows.append(i)
            out_texts.append(result.text)
        self._counters.inc("tweets_found", found)
        self._counters.inc("duplicate_label_rows", duplicates)
        writer = SliceWriter(files.join(self._folder, f"examples-{bucket:05d}.arrow"), HASHTAG_EXAMPLES)
        for lang, (rows, out_texts) in sorted(kept.items()):
            table = label_table.take(pa.array(rows, pa.int64())).append_column(
                HASHTAG_EXAMPLES.field("text"), pa.array(out_texts, pa.string())
            )
            writer.add(lang, table)
        yield from writer.close()

    def _first_label(self, tweet_id: str, rows: list[int], label_row) -> tuple[int, list, int]:
        """An ID on several label rows: (the row kept, conflicting rows' dead letters, exact duplicates)."""
        ordered = sorted(rows, key=lambda i: tuple(label_row(i)[c] for c in ("lang", "key", "label", "source")))
        first = label_row(ordered[0])
        rejects, duplicates = [], 0
        for i in ordered[1:]:
            other = label_row(i)
            if (other["lang"], other["key"]) == (first["lang"], first["key"]):
                duplicates += 1
            else:
                message = f"tweet {tweet_id} already has label {first['label']!r}"
                rejects.append(self._reject(other, "conflicting_label", message))
        return ordered[0], rejects, duplicates


class JoinLabelsWithTweets(beam.PTransform):
    """(label-row batches, tweet tables, unavailable tables) -> ``(lang, SliceRef)`` of examples, and errors.

    The unavailable tables (hydrate's ``unavailable/``: tweet_id, status) tell a tweet that hydrate
    settled as missing (``unavailable``, with its status) from an ID never hydrated (``not_hydrated``).

    Tweet tables are first cut down to the labelled IDs (one side input of the label IDs), then
    both sides are written to spill files under `folder` (common.spill_slices), a slice per one of
    `buckets` hash buckets of the tweet ID, so the join is one shuffle of a few thousand small
    references, not of rows. Examples are HASHTAG_EXAMPLES slices, one per language and bucket.
    """

    def __init__(self, folder: str, *, placeholders: bool = True, buckets: int = 64):
        super().__init__()
        self._folder = folder
        self._placeholders = placeholders
        self._buckets = buckets

    def expand(self, pcolls):
        labels, tweet_tables, unavailable_tables = pcolls
        wanted = (
            labels
            | "LabelIds" >> beam.Map(lambda table: table.column("tweet_id"))
            | "AllIds" >> beam.CombineGlobally(IdUnion()).without_defaults()
        )
        wanted = beam.pvalue.AsSingleton(wanted, default_value=IdUnion.EMPTY)
        candidate_keys = (
            labels
            | "LangKeys" >> beam.FlatMap(_lang_keys)
            | "KeysPerLang" >> beam.CombinePerKey(SetUnion())
            | "KeySets" >> beam.Map(lambda kv: (kv[0], frozenset(kv[1])))
        )
        spill = {"buckets": self._buckets, "salt": _SALT, "folder": self._folder}
        tweets = tweet_tables | "LabelledTweets" >> beam.FlatMap(
            spill_tweet_slices, wanted=wanted, schema=TWEET_INPUT, **spill
        )
        missing = unavailable_tables | "UnavailableIds" >> beam.FlatMap(
            spill_tweet_slices, wanted=wanted, schema=_MISSING, **spill
        )
        label_slices = labels | "LabelSlices" >> beam.FlatMap(
            spill_slices, key="tweet_id", schema=LABEL_ROWS, **spill
        )
        return (
            {"labels": label_slices, "tweets": tweets, "unavailable": missing}
            | "JoinOnBucket" >> beam.CoGroupByKey()
            | "Resolve"
            >> beam.ParDo(
                _ResolveBucketFn(self._placeholders, self._folder), candidate_keys=beam.pvalue.AsDict(candidate_keys)
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


def _spellings(ref: SliceRef) -> Counter:
    """Examples per (label key, spelling as written) of one spilled examples slice."""
    examples = read_slices([ref], HASHTAG_EXAMPLES)
    return Counter(zip(examples.column("key").to_pylist(), examples.column("label").to_pylist(), strict=True))


class BuildLabelVocabulary(beam.PTransform):
    """``(lang, examples SliceRef)`` -> one ``(lang, {key: (label_id, label, count)})`` per language (top `max_labels`)."""

    def __init__(self, max_labels: int):
        super().__init__()
        self._max_labels = max_labels

    def expand(self, examples):
        k = self._max_labels
        return (
            examples
            | "CountBatch" >> beam.Map(lambda kv: (kv[0], _spellings(kv[1])))
            | "CountLabels" >> beam.CombinePerKey(SumDicts())
            | "TopLabels" >> beam.Map(lambda kv: top_labels(kv[0], kv[1], k))
        )


NOT_TOP_K = ("label_not_in_top_k", "label is not among the --max_labels_per_lang most frequent")
NO_RELEASED_SPLIT = ("no_released_split", "--split released: the label file names no split")


def assign_labels(
    examples: pa.Table, entries: dict, released: bool
) -> tuple[pa.Table, list[tuple[tuple[str, str], dict]]]:
    """(rows to write, rejected) for one language's examples and its vocabulary ``{key: (id, label, n)}``.

    Rows get their label_id and the label's display spelling; a label outside the top K is
    rejected. With released splits the split named by the label file is kept and rows from files
    naming none are rejected; otherwise `split` stays null for the writer's hashed split.
    Rejected: ``((reason, message), {tweet_id, lang, label, source})``.
    """
    vocab_keys = list(entries)
    index = pc.index_in(examples.column("key"), value_set=pa.array(vocab_keys, pa.string()))
    in_vocab = pc.is_valid(index)
    ok = pc.and_(in_vocab, pc.is_valid(examples.column("released_split"))) if released else in_vocab
    rejected = []
    for i in pc.indices_nonzero(pc.invert(ok)).to_pylist():
        row = {c: examples.column(c)[i].as_py() for c in ("tweet_id", "lang", "label", "source")}
        rejected.append((NOT_TOP_K if not in_vocab[i].as_py() else NO_RELEASED_SPLIT, row))
    taken = examples.filter(ok)
    index = index.filter(ok)
    label_ids = pa.array([entries[k][0] for k in vocab_keys], pa.int32())
    display = pa.array([entries[k][1] for k in vocab_keys], pa.string())
    split = taken.column("released_split") if released else pa.nulls(taken.num_rows, pa.string())
    rows = pa.table(
        {
            "tweet_id": taken.column("tweet_id"),
            "lang": taken.column("lang"),
            "split": split,
            "text": taken.column("text"),
            "label": display.take(index),
            "label_id": label_ids.take(index),
        }
    )
    return rows, rejected


class _WriteLanguageFn(beam.DoFn):
    """Assigns one language's label IDs and writes its ``{train,validation,test}.parquet`` and ``labels.parquet``.

    Examples whose label is outside the top K (or, with released splits, whose file names no
    split) go to ``errors``.
    """

    def __init__(
        self, output: str, tokenizer: str | None, fractions: tuple[float, float, float] | None, seed: int
    ):
        self._output = output
        self._tokenizer_path = tokenizer
        self._fractions = fractions
        self._seed = seed
        self._kept = {split: Metrics.counter(STAGE, f"kept_{split}") for split in SPLITS}
        self._counters = Counters(STAGE)

    def setup(self) -> None:
        self._tokenizer = TokenizerHandle(self._tokenizer_path)

    def process(self, item: tuple[str, Iterable[SliceRef]], vocab: dict) -> Iterable:
        lang, refs = item
        examples = read_slices(refs, HASHTAG_EXAMPLES)
        rows, rejected = assign_labels(examples, vocab.get(lang, {}), released=self._fractions is None)
        for (reason, message), row in rejected:
            self._counters.inc(f"rejected_{reason}")
            record = error_record(STAGE, _label_input(row), reason, message, row["source"])
            yield beam.pvalue.TaggedOutput(ERRORS, record)
        if rows.num_rows == 0:  # every example rejected: no files for this language
            return
        if self._fractions is not None:
            ids = rows.column("tweet_id").to_pylist()
            splits = pa.array(assign_splits(ids, self._fractions, self._seed), pa.string())
        else:
            splits = rows.column("split")
        for split in SPLITS:
            part = rows.filter(pc.equal(splits, split))
            part = part.take(pa.array(numeric_id_order(part.column("tweet_id")), pa.int64())).combine_chunks()
            columns = {name: part.column(name) for name in _WRITTEN}
            columns["split"] = pa.array([split] * part.num_rows, pa.string())
            encoded = self._tokenizer.encode(part.column("text").to_pylist())
            columns["input_ids"] = pa.array(
                encoded if encoded is not None else [None] * part.num_rows, pa.list_(pa.int32())
            )
            self._kept[split].inc(part.num_rows)
            yield write_table(self._output, lang, split, pa.Table.from_pydict(columns, schema=HASHTAG))
        labels = [
            {"lang": lang, "label_id": i, "label": d, "count": c}
            for (i, d, c) in sorted(vocab[lang].values())
        ]
        yield write_table(self._output, lang, "labels", to_table(labels, HASHTAG_LABELS))


class WriteHashtagBenchmark(beam.PTransform):
    """``(lang, examples SliceRef)`` -> ``<output>/<lang>/<split>.parquet`` + ``labels.parquet``; file infos
    on ``main``, examples whose label is outside the vocabulary on ``errors``.

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
            ).with_outputs(ERRORS, main="main")
        )
