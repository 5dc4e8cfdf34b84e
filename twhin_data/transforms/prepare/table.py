"""Prepare, per Arrow table: decode, normalize, language ID and filters (a pure batch function).

`prepare_table(item, config)` takes ``(source_path, table of schemas.tweets.TWEETS columns)`` and
returns a list of outputs, all picklable so it can run in a `PoolMapFn` process pool:

* ``(bucket, table)``: kept rows (the internal `KEPT` layout), bucketed by a stable hash of the
  normalized text, ready for the dedup shuffle (transforms/prepare/dedup.py);
* ``Tagged("errors", dict)``: dead letters (text_null, text_too_long, invalid_utf8,
  lone_surrogate, invalid_id);
* ``Tagged("stats", dict)``: counts for this table (see transforms/prepare/stats.py).

Filters counted (no dead letter, they are expected): empty_after_normalization, too_short,
outside_time_window (--start/--end), too_few_words (--min_words), benchmark_contamination (with
--exclude: text/contamination.py), language_not_wanted. Retweets (``referenced_tweets`` type ``retweeted``) take the original's
ID (hydrate already put the original's full text in ``text``); dedup decides which copy stays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.errors import RecordError, error_record
from twhin_data.core.ids import ID_RE
from twhin_data.core.pool import Tagged
from twhin_data.core.tables import split_table
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.schemas.corpus import CORPUS
from twhin_data.text import langid
from twhin_data.text.contamination import BenchmarkIndex, load_index, match_view
from twhin_data.text.normalize import get_normalizer, normalizer_name
from twhin_data.transforms.prepare import stats as st
from twhin_data.transforms.prepare.read import ReadTask, Unreadable, read_task

STAGE = "prepare"
__all__ = [
    "CORPUS_LAYOUT",
    "KEPT",
    "PrepareConfig",
    "prepare_table",
    "prepare_task",
    "prepare_tables",
    "warm",
]
#: Rows handed between the prepare and dedup steps: the corpus columns plus `_rt` (is a retweet)
#: and `_h` (64-bit blake2b of the dedup key, the normalized text or its match view: it picks the bucket).
KEPT = pa.schema(
    [f for f in CORPUS if f.name != "copies"]  # copies: set by resampling, after dedup
    + [pa.field("_rt", pa.bool_(), nullable=False), pa.field("_h", pa.uint64(), nullable=False)]
)
#: The corpus columns of a KEPT row (resampling adds `copies` when it writes the part).
CORPUS_LAYOUT = pa.schema([f for f in KEPT if not f.name.startswith("_")])
_TWITTER_EPOCH_MS = 1288834974657


@dataclass(frozen=True)
class PrepareConfig:
    """Everything `prepare_table` needs; frozen and picklable (it travels to pool processes)."""

    normalizer: str = "normalize_v1"
    placeholders: bool = True
    strip_rt: bool = False
    min_chars: int = 1
    max_chars: int = 100_000
    detector: str = "fasttext"
    min_lang_score: float | None = None
    languages: tuple[str, ...] = field(default_factory=tuple)
    buckets: int = 64
    keep_raw_text: bool = False
    exclude: tuple[str, ...] = ()  # built benchmark folders whose dev/test tweets stay out
    dedup: str = "view"  # exact | view | none: view buckets rows by their match view
    min_words: int = 1  # words left in the match view (placeholder-only tweets have none)
    start: datetime | None = None  # corpus time window [start, end) (tweet creation time, UTC)
    end: datetime | None = None

    @property
    def normalizer_tag(self) -> str:
        return normalizer_name(self.normalizer, placeholders=self.placeholders, strip_rt=self.strip_rt)


def warm(config: PrepareConfig) -> None:
    """Pool initializer: loads the language-ID model (and the benchmark index) once per process."""
    langid.warm(config.detector)
    benchmark_index(config.exclude)


_INDEXES: dict[tuple[str, ...], BenchmarkIndex] = {}


def benchmark_index(exclude: tuple[str, ...]) -> BenchmarkIndex | None:
    """The dev/test tweets of the --exclude benchmarks, read once per process (None: no --exclude)."""
    if not exclude:
        return None
    if exclude not in _INDEXES:
        _INDEXES[exclude] = load_index(exclude)
    return _INDEXES[exclude]


def text_hash(text: str) -> int:
    """Stable 64-bit hash of a normalized text (blake2b; the same on every machine and run)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def text_bucket(text: str, buckets: int) -> int:
    """Stable dedup bucket of a normalized text."""
    return text_hash(text) % buckets


def _decode_texts(column: pa.ChunkedArray) -> tuple[list[str | None], dict[int, str]]:
    """Texts as Python strings; rows that are not valid UTF-8 come back as errors by row.

    UTF-8-encoded surrogates (CESU-8, as some JSON tools write emoji) are decoded with
    surrogatepass, so the normalizer can join the pairs; anything else invalid is an error.
    """
    try:
        column.validate(full=True)
        return column.to_pylist(), {}
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    bad: dict[int, str] = {}
    for i, raw in enumerate(column.cast(pa.binary()).to_pylist()):
        if raw is None:
            texts.append(None)
            continue
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            try:
                texts.append(raw.decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError:
                texts.append(None)
                bad[i] = f"text is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    return texts, bad


def _retweet_targets(table: pa.Table) -> list[str | None]:
    """Per row: the retweeted original's ID, or None (vectorized over the list column)."""
    targets: list[str | None] = [None] * table.num_rows
    if "referenced_tweets" not in table.column_names:
        return targets
    refs = table.column("referenced_tweets").combine_chunks()
    if refs.null_count == len(refs) or len(pc.list_flatten(refs)) == 0:
        return targets
    flat = pc.list_flatten(refs)
    parents = pc.list_parent_indices(refs).to_pylist()
    kinds = flat.field("type").to_pylist()
    ids = flat.field("id").to_pylist()
    for parent, kind, ref_id in zip(parents, kinds, ids, strict=True):
        if kind == "retweeted" and ref_id and ID_RE.match(ref_id) and targets[parent] is None:
            targets[parent] = ref_id
    return targets


def _column_or_nulls(table: pa.Table, name: str, type_: pa.DataType) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows, type_)])


def _in_window(tweet_id: str, config: PrepareConfig) -> bool:
    """Whether the tweet was created in [start, end) (its time from its Snowflake ID)."""
    created = _snowflake_time(tweet_id)
    return (config.start is None or created >= config.start) and (config.end is None or created < config.end)


def _snowflake_time(tweet_id: str) -> datetime:
    return datetime.fromtimestamp(((int(tweet_id) >> 22) + _TWITTER_EPOCH_MS) / 1000, tz=UTC)


@dataclass(frozen=True)
class DecodedTable:
    """One input table with its text column decoded: what the row steps below read."""

    table: pa.Table
    texts: list[str | None]  # the text column as Python strings (None: null or undecodable)
    bad_utf8: dict[int, str]  # row -> why its bytes are not UTF-8
    source: str  # the input file, for dead letters


@dataclass
class NormalizedRows:
    """The rows of one table that passed normalization and the length filters, in row order."""

    keep: list[int] = field(default_factory=list)  # row indices into DecodedTable.table
    texts: list[str] = field(default_factory=list)  # normalized text (the corpus text)
    lid_texts: list[str] = field(default_factory=list)  # the view language ID reads
    retweet_of: list[str | None] = field(default_factory=list)  # the original's ID for a retweet


def _normalize_rows(
    decoded: DecodedTable, *, config: PrepareConfig, stats: st.TableStats, errors: list[dict]
) -> NormalizedRows:
    """Runs the normalizer row by row; rejected rows become counts and dead letters."""
    table, texts, bad_utf8 = decoded.table, decoded.texts, decoded.bad_utf8
    normalize = get_normalizer(config.normalizer)
    ids = table.column("tweet_id").to_pylist()
    use_entities = config.placeholders
    mentions = (
        table.column("mentions").to_pylist() if use_entities and "mentions" in table.column_names else None
    )
    urls = table.column("urls").to_pylist() if use_entities and "urls" in table.column_names else None
    targets = _retweet_targets(table)
    index = benchmark_index(config.exclude)
    rows = NormalizedRows()
    for i, text in enumerate(texts):
        tweet_id = ids[i]
        reason = None
        if tweet_id is None or not ID_RE.match(tweet_id):
            reason, message = "invalid_id", "tweet_id is not 1-19 decimal digits"
        elif i in bad_utf8:
            reason, message = "invalid_utf8", bad_utf8[i]
        elif text is None:
            reason, message = "text_null", "the tweet has no text (null)"
        elif len(text) > config.max_chars:
            reason, message = "text_too_long", f"text has {len(text)} characters (limit {config.max_chars})"
        if reason is None:
            try:
                out, lid = normalize(
                    text,
                    mentions=mentions[i] if mentions else None,
                    urls=urls[i] if urls else None,
                    placeholders=config.placeholders,
                    strip_rt=config.strip_rt,
                )
            except RecordError as exc:
                reason, message = exc.error_type, exc.message
        if reason is not None:
            stats.reject(reason)
            shown = {"tweet_id": tweet_id, "text": text if reason != "invalid_utf8" else None}
            errors.append(error_record(STAGE, shown, reason, message, decoded.source))
            continue
        if not out:
            stats.reject("empty_after_normalization")
            continue
        if len(out) < config.min_chars:
            stats.reject("too_short")
            continue
        if (config.start or config.end) and not _in_window(tweet_id, config):
            stats.reject("outside_time_window")
            continue
        if config.min_words and len(match_view(out).split()) < config.min_words:
            stats.reject("too_few_words")  # e.g. "@user http": placeholders, emoji, digits only
            continue
        if index is not None and (copied := index.match(targets[i] or tweet_id, out) or index.match(tweet_id, None)):
            stats.reject("benchmark_contamination")  # a benchmark dev/test tweet or a copy of one
            stats.counts("contamination", ["/".join(copied.split("/")[:2])])  # benchmark/lang
            continue
        rows.keep.append(i)
        rows.texts.append(out)
        rows.lid_texts.append(lid)
        rows.retweet_of.append(targets[i])
    return rows


def prepare_table(item: tuple[str, pa.Table], config: PrepareConfig) -> list:
    """The batch function for one (source path, table) element (see the module docstring)."""
    source, table = item
    return prepare_tables(source, [table], config)


def prepare_task(task: ReadTask, config: PrepareConfig) -> list:
    """Reads one planned task (prepare/read.py) and prepares its tables: the pool function."""
    return prepare_tables(task.path, read_task(task), config)


def prepare_tables(source: str, tables: Iterable[pa.Table], config: PrepareConfig) -> list:
    """Prepares tables of one source; one stats dict and one table per bucket for all of them."""
    stats = st.TableStats()
    errors: list[dict] = []
    kept_tables = []
    for table in tables:
        if isinstance(table, Unreadable):  # damaged pages: every row they held is counted as rejected
            stats.add("in", table.rows)
            stats.reject("unreadable_parquet", table.rows)
            errors.append(
                error_record(STAGE, {"rows": table.rows}, "unreadable_parquet", table.message, source)
            )
            continue
        stats.add("in", table.num_rows)
        texts, bad_utf8 = _decode_texts(_column_or_nulls(table, "text", pa.string()))
        stats.length_hist("raw_chars", [len(t) for t in texts if t is not None])
        decoded = DecodedTable(table, texts, bad_utf8, source)
        rows = _normalize_rows(decoded, config=config, stats=stats, errors=errors)
        if rows.keep:
            kept_tables.append(_build_kept(decoded, rows, config=config, stats=stats))
    outputs: list = [Tagged(ERRORS, e) for e in errors]
    if kept_tables:
        outputs.extend(_split_buckets(pa.concat_tables(kept_tables), config.buckets))
    outputs.append(Tagged(STATS, stats.to_dict()))
    return outputs


def _build_kept(
    decoded: DecodedTable, rows: NormalizedRows, *, config: PrepareConfig, stats: st.TableStats
) -> pa.Table:
    """The KEPT table of the normalized rows: language ID, corpus columns, the --languages filter."""
    table, texts, keep, rt = decoded.table, decoded.texts, rows.keep, rows.retweet_of
    out_texts = rows.texts
    x_lang_all = _column_or_nulls(table, "lang", pa.string()).to_pylist()
    x_langs = [x_lang_all[i] for i in keep]
    detector = langid.get_detector(config.detector, config.min_lang_score)
    langs, scores = detector.detect(rows.lid_texts, x_langs)
    stats.counts("lang_detected", langs)
    take = pa.array(keep, pa.int64())
    ids = table.column("tweet_id").take(take).to_pylist()
    tweet_ids = [target or own for target, own in zip(rt, ids, strict=True)]
    created = _column_or_nulls(table, "created_at", CORPUS.field("created_at").type).take(take)
    authors = _column_or_nulls(table, "author_id", pa.string()).take(take)
    if any(t is not None for t in rt):
        # The row is the retweeter's: the original's author is unknown, its time is in its ID.
        is_rt = pa.array([t is not None for t in rt], pa.bool_())
        snow = pa.array([_snowflake_time(t) if t else None for t in rt], CORPUS.field("created_at").type)
        created = pc.if_else(is_rt, snow, created.cast(CORPUS.field("created_at").type))
        authors = pc.if_else(is_rt, pa.nulls(len(rt), pa.string()), authors)
    hashtags = _column_or_nulls(table, "hashtags", pa.list_(pa.string())).take(take)
    columns = {
        "tweet_id": pa.array(tweet_ids, pa.string()),
        "source_tweet_id": pa.array(ids, pa.string()),
        "text": pa.array(out_texts, pa.string()),
        "text_raw": pa.array(
            [texts[i] for i in keep] if config.keep_raw_text else [None] * len(keep), pa.string()
        ),
        "lang": pa.array(langs, pa.string()),
        "lang_score": pa.array(scores, pa.float32()),
        "lang_source": pa.array([detector.name] * len(keep), pa.string()),
        "x_lang": pa.array(x_langs, pa.string()),
        "hashtags": hashtags.cast(pa.list_(pa.string())),
        "created_at": created.cast(CORPUS.field("created_at").type),
        "author_id": authors,
        "num_chars": pa.array([len(t) for t in out_texts], pa.int32()),
        "normalizer": pa.array([config.normalizer_tag] * len(keep), pa.string()),
        "_rt": pa.array([t is not None for t in rt], pa.bool_()),
        "_h": pa.array([text_hash(k) for k in _dedup_keys(out_texts, config.dedup)], pa.uint64()),
    }
    kept = pa.table({f.name: columns[f.name] for f in KEPT}, schema=KEPT)
    if config.languages:
        wanted = pc.is_in(kept.column("lang"), value_set=pa.array(list(config.languages), pa.string()))
        stats.reject("language_not_wanted", len(kept) - pc.sum(wanted).as_py())
        kept = kept.filter(wanted)
    return kept


def _dedup_keys(texts: list[str], dedup: str) -> list[str]:
    """What dedup compares (dedup.py), hashed into `_h` so that equal keys meet in one bucket."""
    return [match_view(t) or t for t in texts] if dedup == "view" else texts


def _split_buckets(kept: pa.Table, buckets: int) -> Iterable[tuple[int, pa.Table]]:
    return split_table(kept, (kept.column("_h").to_numpy() % np.uint64(buckets)).astype(np.int64))
