"""`twhin-data prepare`'s flags and their checks (pipelines/prepare.py runs the command)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from twhin_data.core.errors import ConfigError
from twhin_data.pipelines import flags as opts
from twhin_data.text import langid
from twhin_data.text.minhash import LshParams, parse_near_dedup
from twhin_data.text.normalize import NORMALIZERS

#: prepare --near_dedup's default (bench/bench_near_dedup.py measured it on real tweets).
NEAR_DEDUP_DEFAULT = "jaccard=0.6"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tweets",
        required=True,
        help="Hydrate output: a directory (DIR/tweets/*.parquet if present, else DIR/*.parquet), "
        "a Parquet file or a glob; comma-separated allowed.",
    )
    parser.add_argument(
        "--lang_detector",
        default="fasttext",
        choices=sorted(langid.DETECTORS),
        help="Language-ID backend: fasttext (lid.176, default), langdetect (slow) or x (the API's lang).",
    )
    parser.add_argument(
        "--normalizer",
        default="normalize_v1",
        choices=sorted(NORMALIZERS),
        help="Normalizer version (a published version never changes its output).",
    )
    parser.add_argument(
        "--no_placeholders",
        action="store_true",
        help="Keep @mentions and URLs as written instead of @user / http placeholders.",
    )
    parser.add_argument("--strip_rt", action="store_true", help="Remove a leading 'RT @name:' prefix.")
    parser.add_argument(
        "--min_chars",
        type=opts.non_negative_int,
        default=1,
        help="Drop tweets whose normalized text is shorter (code points) as too_short.",
    )
    parser.add_argument(
        "--max_chars",
        type=opts.positive_int,
        default=100_000,
        help="Reject texts longer than this before normalization as text_too_long.",
    )
    parser.add_argument(
        "--dedup",
        default="view",
        choices=["view", "exact", "none"],
        help="view: one tweet per match view (the text without links, mentions, hashtag marks, emoji, "
        "digits, punctuation and case; lowest tweet ID), so copies with another link, mention, emoji, "
        "case or number go too (near_duplicate); exact: one tweet per normalized text; none: keep repeats.",
    )
    parser.add_argument(
        "--near_dedup",
        default=NEAR_DEDUP_DEFAULT,
        help="MinHash-LSH near-duplicate removal after --dedup: tweets whose match views share at "
        "least this Jaccard of character 4-grams form a cluster, the lowest tweet ID stays and the "
        "others are minhash_duplicate (mapped to it in duplicates/); --dedup none turns it off too. "
        f"Default {NEAR_DEDUP_DEFAULT} (20 bands of 4 rows); also shingle=K,bands=B,rows=R; off to skip.",
    )
    parser.add_argument(
        "--resample_alpha",
        type=float,
        default=0.7,
        help="Language resampling exponent, the paper's 0.7: language l gets the share "
        "n_l^alpha / sum n^alpha of --resample_target (up-sampled by repetition, down-sampled by "
        "hashed ID). 1.0 keeps the languages' own shares.",
    )
    parser.add_argument(
        "--resample_target",
        type=opts.positive_int,
        default=None,
        help="Training tweets after resampling (copies counted); default: the deduplicated corpus size.",
    )
    parser.add_argument(
        "--resample_mode",
        default="materialize",
        choices=["materialize", "weights"],
        help="materialize: drop and repeat tweets (corpus column `copies`, shard writes each copy); "
        "weights: keep every tweet once and record per-language sampling weights for trainers that "
        "sample on the fly.",
    )
    parser.add_argument(
        "--resample_min_count",
        type=opts.non_negative_int,
        default=100,
        help="Languages with fewer tweets (after dedup), and und, are kept whole and never repeated.",
    )
    parser.add_argument(
        "--max_per_author",
        type=opts.non_negative_int,
        default=0,
        help="Keep at most this many tweets of one author (the same ones on every run: ranked by a "
        "hash of the tweet ID); author_cap counts the others. 0 (default) = no cap.",
    )
    parser.add_argument(
        "--min_words",
        type=opts.non_negative_int,
        default=1,
        help="Drop tweets with fewer words once placeholders, hashtag marks, emoji, digits and "
        "punctuation are set aside (too_few_words: '@user http' has none); 0 keeps them.",
    )
    parser.add_argument(
        "--start",
        type=_utc_time,
        default=None,
        help="Keep tweets created at or after this ISO 8601 time (UTC if no zone; the paper's corpus: "
        "2020-01-01). Default: no limit.",
    )
    parser.add_argument(
        "--end",
        type=_utc_time,
        default=None,
        help="Keep tweets created before this ISO 8601 time (the paper's corpus: 2022-07-01). Default: no limit.",
    )
    parser.add_argument(
        "--exclude",
        type=opts.csv_list,
        default=None,
        help="Built benchmark folders (benchmark hashtag/engagement outputs, comma-separated): their "
        "validation and test tweets, and copies of them (another link, mention, emoji, case or "
        "punctuation, or a shared 50-character span), stay out of the corpus, counted per "
        "benchmark and language. Default: none.",
    )
    parser.add_argument(
        "--languages",
        type=opts.csv_list,
        default=None,
        help="Comma-separated language codes to keep (e.g. en,ja,und); default: all.",
    )
    parser.add_argument(
        "--min_lang_score",
        type=float,
        default=None,
        help="Detector confidence below which the language is 'und' (default: 0.15 fasttext, 0.5 langdetect); an unsure detection takes X's own lang when the detector ranks it among its three best guesses.",
    )
    parser.add_argument(
        "--num_output_shards",
        type=opts.positive_int,
        default=None,
        help="Parquet parts in corpus/ (default: 1 per ~200k input rows, at most 256).",
    )
    parser.add_argument(
        "--dedup_buckets",
        type=opts.positive_int,
        default=None,
        help="Text-hash buckets of the dedup step (default: 1 per 25k input rows, at most 4096; more "
        "buckets = more parallel dedup tasks); "
        "the output does not depend on it.",
    )
    parser.add_argument(
        "--keep_raw_text",
        action="store_true",
        help="Also store the hydrated text before normalization in corpus.text_raw (default: null; "
        "source_tweet_id points to the row in tweets/).",
    )


def _utc_time(text: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone); argparse's one-line error otherwise."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2020-01-01, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def validate(args: argparse.Namespace) -> None:
    if args.start and args.end and args.start >= args.end:
        raise ConfigError(f"--start {args.start.isoformat()} is not before --end {args.end.isoformat()}")
    if not 0.0 < args.resample_alpha <= 1.0:
        raise ConfigError(f"--resample_alpha must be in (0, 1], got {args.resample_alpha}")
    near_params(args)
    if args.min_lang_score is not None and not 0.0 <= args.min_lang_score <= 1.0:
        raise ConfigError(f"--min_lang_score must be in [0, 1], got {args.min_lang_score}")




def near_params(args: argparse.Namespace) -> LshParams | None:
    """--near_dedup parsed (None when off, or with --dedup none); a ConfigError names the flag."""
    try:
        params = parse_near_dedup(getattr(args, "near_dedup", "off") or "off")
        return None if getattr(args, "dedup", "view") == "none" else params
    except ValueError as exc:
        raise ConfigError(f"--near_dedup: {exc}") from None
