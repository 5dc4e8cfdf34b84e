"""Tokenizer loading, batch encoding and greedy packing: pure functions, no Beam import.

A tokenizer is a `tokenizer.json` file (local path or gs://...) or a Hugging Face Hub model name
resolved from the local Hub cache only (never downloaded). Special ids are read from the
tokenizer, never assumed: XLM-R (and TwHIN-BERT) use ``<s>``=0, ``<pad>``=1, ``</s>``=2,
``<unk>``=3 and ``<mask>`` last, but another tokenizer may differ.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
from dataclasses import asdict, dataclass, field
from importlib import resources

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.text.word_memo import memo_of, memo_wanted

#: The small tokenizer bundled with the package (8,000 pieces, XLM-R layout).
BUNDLED = "bundled"
#: Candidate spellings of each special token, XLM-R's first.
SPECIAL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "bos": ("<s>", "[CLS]", "<|begin_of_text|>"),
    "pad": ("<pad>", "[PAD]"),
    "eos": ("</s>", "[SEP]", "<|end_of_text|>"),
    "unk": ("<unk>", "[UNK]"),
    "mask": ("<mask>", "[MASK]"),
}
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class TokenizerInfo:
    """What the manifest records about a tokenizer."""

    name: str
    path: str
    sha256: str
    vocab_size: int
    special_ids: dict[str, int | None] = field(default_factory=dict)
    special_tokens: dict[str, str | None] = field(default_factory=dict)
    adds_special_tokens: bool = True

    @property
    def pad_id(self) -> int | None:
        return self.special_ids.get("pad")

    def to_dict(self) -> dict:
        return asdict(self)


def bundled_path() -> str:
    """Path of the bundled tokenizer.json (package data)."""
    return str(resources.files("twhin_data.data").joinpath("tokenizer.json"))


def _hub_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def resolve_tokenizer_path(path_or_name: str) -> str:
    """Maps a tokenizer argument to a readable tokenizer.json path, or raises ConfigError.

    Order: ``bundled``; an existing file (local or gs://); a directory holding tokenizer.json;
    a Hub name (``org/model``) found in the local Hub cache (offline, never downloaded).
    """
    if path_or_name in (BUNDLED, "", None):
        return bundled_path()
    if "://" in path_or_name:
        if files.exists(path_or_name):
            return path_or_name
        raise ConfigError(f"tokenizer file not found: {path_or_name}")
    if os.path.isdir(path_or_name):
        candidate = os.path.join(path_or_name, "tokenizer.json")
        if os.path.isfile(candidate):
            return candidate
        raise ConfigError(f"tokenizer directory {path_or_name} holds no tokenizer.json")
    if os.path.isfile(path_or_name):
        return path_or_name
    looks_like_file = path_or_name.endswith(".json") or path_or_name.startswith((".", "/", "~"))
    if looks_like_file or not _HUB_NAME.match(path_or_name):
        raise ConfigError(f"tokenizer file not found: {path_or_name}")
    cache = _hub_cache_dir()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - datasets depends on huggingface_hub
        try_to_load_from_cache = None
    found = (
        try_to_load_from_cache(path_or_name, "tokenizer.json", cache_dir=cache)
        if try_to_load_from_cache
        else None
    )
    if isinstance(found, str) and os.path.isfile(found):
        return found
    raise ConfigError(
        f"tokenizer {path_or_name!r} is neither a file nor a Hub model in the local cache: "
        f"tokenizer.json of {path_or_name} not found under {cache} (offline; download it first, e.g. "
        f"`huggingface-cli download {path_or_name} tokenizer.json`, or pass a tokenizer.json path)"
    )


def special_ids(tokenizer: Tokenizer) -> tuple[dict[str, int | None], dict[str, str | None]]:
    """Reads the special ids (bos, pad, eos, unk, mask) from the tokenizer's vocabulary."""
    ids: dict[str, int | None] = {}
    tokens: dict[str, str | None] = {}
    for role, candidates in SPECIAL_CANDIDATES.items():
        ids[role], tokens[role] = None, None
        for token in candidates:
            token_id = tokenizer.token_to_id(token)
            if token_id is not None:
                ids[role], tokens[role] = int(token_id), token
                break
    return ids, tokens


def _info(name: str, path: str, data: bytes, tokenizer: Tokenizer) -> TokenizerInfo:
    ids, tokens = special_ids(tokenizer)
    probe = tokenizer.encode("a").ids
    adds = bool(probe) and ids["bos"] is not None and probe[0] == ids["bos"]
    return TokenizerInfo(
        name=name,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        vocab_size=int(tokenizer.get_vocab_size(with_added_tokens=True)),
        special_ids=ids,
        special_tokens=tokens,
        adds_special_tokens=adds,
    )


@functools.lru_cache(maxsize=4)
def load_tokenizer(path_or_name: str) -> tuple[Tokenizer, TokenizerInfo]:
    """Loads a tokenizer once per process: ``(tokenizers.Tokenizer, TokenizerInfo)``.

    Raises ConfigError naming the missing file, or when the file is not a tokenizer.json.
    The returned Tokenizer is shared (cached): do not change its truncation/padding settings.
    """
    path = resolve_tokenizer_path(path_or_name)
    data = files.read_bytes(path)
    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise ConfigError(f"{path} is not a valid tokenizer.json: {str(exc).splitlines()[0]}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    name = "bundled" if path_or_name in (BUNDLED, "", None) else path_or_name
    info = _info(name, path, data, tokenizer)
    if info.special_ids["eos"] is None or info.special_ids["bos"] is None:
        raise ConfigError(f"tokenizer {name}: no <s>/</s> (or [CLS]/[SEP]) special tokens in its vocabulary")
    return tokenizer, info


def encode_texts(tokenizer: Tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Encodes texts as ``<s> ... </s>`` id lists of at most `max_length` ids (see `encode_arrow`)."""
    values, offsets, _ = encode_arrow(tokenizer, texts, max_length, eos_id=_eos(tokenizer))
    return [values[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]


def _eos(tokenizer: Tokenizer) -> int | None:
    return special_ids(tokenizer)[0]["eos"]


def encode_arrow(
    tokenizer: Tokenizer, texts: list[str], max_length: int, *, eos_id: int | None, memo: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch-encodes `texts` with the tokenizer's own template: the ids of ``encode_batch_fast``.

    With `memo` None (the default), a tokenizer that runs on one thread in this process (a pool
    child of ``--workers`` = cores, or ``RAYON_NUM_THREADS=1``) encodes through its word memo
    (text/word_memo.py: the same ids, 2-3x faster on one thread); with several threads, or with
    ``TWHIN_WORD_MEMO=0``, the Rust batch call is used. True or False forces the choice (the memo
    still needs a tokenizer of its layout).

    Sequences longer than `max_length` are cut to ``max_length - 1`` ids plus their final id
    (the ``</s>``), so a truncated tweet still ends with ``</s>``.

    Returns:
      (values int32, offsets int64 of len(texts)+1, truncated bool per text): the flat ids and
      Arrow-style list offsets, ready for ``pa.ListArray.from_arrays``.
    """
    if max_length < 2:
        raise ValueError("max_length must be at least 2")
    memoized = memo_of(tokenizer) if (memo_wanted() if memo is None else memo) else None
    ids = memoized.encode(texts) if memoized else [enc.ids for enc in tokenizer.encode_batch_fast(texts)]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    truncated = lengths > max_length
    if truncated.any():
        for i in np.flatnonzero(truncated):
            seq = ids[i]
            keep_last = eos_id is not None and seq[-1] == eos_id
            ids[i] = seq[: max_length - 1] + [seq[-1]] if keep_last else seq[:max_length]
        lengths = np.minimum(lengths, max_length)
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(offsets[-1]))
    return values, offsets, truncated


def pack_boundaries(lengths: np.ndarray, max_length: int) -> np.ndarray:
    """Greedy next-fit packing of whole sequences, in the given order, into rows of <= max_length.

    Args:
      lengths: token count of each sequence (each <= max_length).
    Returns:
      row start indices into `lengths`, plus len(lengths) at the end (like list offsets).
      Example: lengths [50, 60, 30, 100], max 128 -> [0, 2, 3, 4] (rows [50, 60], [30], [100]).
    """
    starts = [0]
    used = 0
    for i, n in enumerate(lengths.tolist()):
        if used and used + n > max_length:
            starts.append(i)
            used = 0
        used += n
    if len(lengths):
        starts.append(len(lengths))
    else:
        starts = [0]
    return np.asarray(starts, dtype=np.int64)


def pack_table(
    tweet_ids: pa.Array, langs: pa.Array, values: np.ndarray, offsets: np.ndarray, max_length: int
) -> dict[str, pa.Array]:
    """Packs consecutive tokenized tweets into rows (columns of schemas.shards.MLM_SHARD).

    The tweets stay in order and are never split, so each row's input_ids are a contiguous
    slice of `values`: rows are built from offsets alone, without copying token ids.
    """
    lengths = np.diff(offsets)
    bounds = pack_boundaries(lengths, max_length)
    row_offsets = offsets[bounds].astype(np.int32)
    input_ids = pa.ListArray.from_arrays(pa.array(row_offsets), pa.array(values, type=pa.int32()))
    # Per row: each tweet's start inside the row = its global offset minus the row's first offset.
    row_of_tweet = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    local = (offsets[:-1] - offsets[bounds[:-1]][row_of_tweet]).astype(np.int32)
    tweet_offsets = pa.ListArray.from_arrays(
        pa.array(bounds.astype(np.int32)), pa.array(local, type=pa.int32())
    )
    bounds_arr = pa.array(bounds.astype(np.int32))
    return {
        "input_ids": input_ids,
        "tweet_offsets": tweet_offsets,
        "tweet_ids": pa.ListArray.from_arrays(bounds_arr, tweet_ids),
        "langs": pa.ListArray.from_arrays(bounds_arr, langs),
        "num_tokens": pa.array(np.diff(row_offsets).astype(np.int32), type=pa.int32()),
    }
