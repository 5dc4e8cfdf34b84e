"""The ids of ``Tokenizer.encode_batch_fast``, computed once per distinct word (pure, no Beam).

A `tokenizers` tokenizer encodes a text in four steps: added tokens (``<s>``, ``<mask>`` ...)
are cut out, the normalizer runs, the pre-tokenizer cuts words, the model encodes each word on
its own, and the post-processor adds the special tokens. With the SentencePiece layout of XLM-R
and TwHIN-BERT (a ``Metaspace`` pre-tokenizer that splits, ``prepend_scheme`` ``always`` or
``never``, alone or after ``WhitespaceSplit`` as in older converted files; a Unigram model without
sampling, or BPE without dropout), the words of a text are its normalized text with spaces
written ``▁`` (or each whitespace-separated word marked with a ``▁``), cut before each ``▁``. So

    ids(text) = prefix + model(word_1) + ... + model(word_n) + suffix

and since tweets repeat their words, `WordMemo` runs the model once per distinct word. On one
thread it is 2-3x faster than ``encode_batch_fast`` on 200k synthetic tweets with XLM-R-layout
Unigram tokenizers of 1k-250k pieces (bench/RESULTS.md); the Rust tokenizer is faster when it
has several threads of its own, so `memo_wanted` picks the memo only on one thread.

Exactness is by construction and checked: a tokenizer of another layout gets no memo
(`memo_for` returns None), a text holding an added token's content (before or after
normalization) or normalizing to nothing goes through ``encode_batch_fast``, and each memo
compares itself with the tokenizer on probe texts before it is used.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Sequence

from tokenizers import Tokenizer

from twhin_data.core.pool import usable_cores

#: Distinct words a memo holds (the first seen: a language's frequent words come early), about
#: 35 MB of Python objects; later words are encoded by the model each time.
MAX_WORDS = 1 << 17
#: Longer words (a clause of a script written without spaces) rarely repeat: not held.
MAX_WORD_CHARS = 24
#: Rust's ``char::is_whitespace`` (Unicode White_Space), what ``WhitespaceSplit`` cuts on; Python's
#: ``str.split()`` differs (it also cuts on U+001C-U+001F).
_WHITESPACE = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
#: Texts the memo must encode exactly as the tokenizer does before it is used.
PROBES = (
    "hello world",
    "a",
    " leading and trailing spaces ",
    "two  spaces,\ttab and\nnewline",
    "Ünïcödé ｆｕｌｌｗｉｄｔｈ ﬁ ligature, 日本語のテキスト, عربي, emoji 🎉🏳️‍🌈",
    "▁already▁marked ▁ words",
    "\u3000ideographic\u2003em\u00a0nbsp\u0085nel\x1cfile-separator\u200bzero-width",
)
#: Values of TOKENIZERS_PARALLELISM that turn the Rust tokenizer's threads off (its own list).
_FALSE = ("", "0", "f", "false", "n", "no", "off")


class _Words(dict):
    """word -> ids; a missing word is encoded by the model (and kept while there is room)."""

    def __init__(self, tokenize):
        super().__init__()
        self.tokenize = tokenize

    def __missing__(self, word: str) -> tuple[int, ...]:
        ids = tuple(token.id for token in self.tokenize(word))
        if len(word) <= MAX_WORD_CHARS and len(self) < MAX_WORDS:  # else: the model each time
            self[word] = ids
        return ids


class WordMemo:
    """Encodes texts as the tokenizer's ``encode_batch_fast(texts)`` would (ids only)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        prepend: bool,
        replacement: str,
        whitespace_split: bool = False,
        specials: tuple[list[int], list[int]] = ([], []),
    ):
        self.tokenizer = tokenizer
        self.prefix, self.suffix = specials  # the post-processor's ids before and after a text's
        self.prepend = prepend
        self.replacement = replacement
        self.whitespace_split = whitespace_split
        self.normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer else str
        # Model ids of "▁" + piece, keyed by the piece; and of a first piece without "▁" (never).
        tokenize = tokenizer.model.tokenize  # the model the tokenizer itself runs (shared, not a copy)
        self.words = _Words(lambda piece: tokenize(replacement + piece))
        self.bare = _Words(tokenize)
        added = tokenizer.get_added_tokens_decoder().values()
        contents = sorted({t.content for t in added if t.content}, key=len, reverse=True)
        self.added = re.compile("|".join(map(re.escape, contents))) if contents else None

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """One id list per text, equal to ``[e.ids for e in tokenizer.encode_batch_fast(texts)]``."""
        out: list[list[int]] = []
        direct: list[int] = []
        rep, prefix, suffix = self.replacement, self.prefix, self.suffix
        words, added, normalize = self.words, self.added, self.normalize
        getitem = words.__getitem__
        for i, text in enumerate(texts):
            s = normalize(text)
            if not s or (added is not None and (added.search(text) or added.search(s))):
                direct.append(i)
                out.append(prefix)
                continue
            ids = prefix.copy()
            if self.whitespace_split:  # each word on its own, as WhitespaceSplit hands them over
                for word in _WHITESPACE.split(s):
                    if word:
                        self._extend(ids, word, getitem)
            else:
                self._extend(ids, s.replace(" ", rep), getitem)
            ids.extend(suffix)
            out.append(ids)
        if direct:
            encodings = self.tokenizer.encode_batch_fast([texts[i] for i in direct])
            for i, encoding in zip(direct, encodings, strict=True):
                out[i] = encoding.ids
        return out

    def _extend(self, ids: list[int], s: str, getitem) -> None:
        """Appends the ids of Metaspace's pieces of `s` (spaces already written as the mark)."""
        rep = self.replacement
        if self.prepend and not s.startswith(rep):
            s = rep + s
        parts = s.split(rep)
        if parts[0]:
            ids.extend(self.bare[parts[0]])
        ids.extend(itertools.chain.from_iterable(map(getitem, itertools.islice(parts, 1, None))))


def _layout(tokenizer: Tokenizer) -> tuple[bool, str, bool] | None:
    """(prepend, replacement, whitespace_split) when the tokenizer has a layout the memo
    reproduces, else None."""
    if tokenizer.pre_tokenizer is None:
        return None
    spec = json.loads(tokenizer.pre_tokenizer.__getstate__())
    whitespace_split = spec.get("type") == "Sequence"
    if whitespace_split:
        steps = spec.get("pretokenizers") or []
        if len(steps) != 2 or steps[0].get("type") != "WhitespaceSplit":
            return None
        spec = steps[1]
    if spec.get("type") != "Metaspace" or not spec.get("split") or spec.get("prepend_scheme") not in ("always", "never"):
        return None
    model = tokenizer.model
    kind = type(model).__name__
    if kind == "Unigram":
        if getattr(model, "alpha", None) is not None or getattr(model, "nbest_size", None) is not None:
            return None  # subword sampling: not a function of the word
    elif kind == "BPE":
        if getattr(model, "dropout", None) not in (None, 0.0):
            return None
    else:
        return None
    return spec["prepend_scheme"] == "always", spec["replacement"], whitespace_split


def _specials(tokenizer: Tokenizer, probe: str) -> tuple[list[int], list[int]] | None:
    """The ids the post-processor puts before and after a text's own ids."""
    full = tokenizer.encode(probe).ids
    own = tokenizer.encode(probe, add_special_tokens=False).ids
    for k in range(len(full) - len(own) + 1):
        if full[k : k + len(own)] == own:
            return full[:k], full[k + len(own) :]
    return None


def memo_for(tokenizer: Tokenizer) -> WordMemo | None:
    """A `WordMemo` for `tokenizer`, or None when its layout or a probe says the memo would differ."""
    layout = _layout(tokenizer)
    if layout is None:
        return None
    found = [_specials(tokenizer, probe) for probe in PROBES]
    if found[0] is None or any(f != found[0] for f in found):
        return None
    memo = WordMemo(tokenizer, *layout, specials=found[0])
    if memo.encode(PROBES) != [e.ids for e in tokenizer.encode_batch_fast(list(PROBES))]:
        return None
    return memo


#: id(tokenizer) -> (tokenizer, its memo or None); the tokenizer is held so its id stays its own.
_MEMOS: dict[int, tuple[Tokenizer, WordMemo | None]] = {}


def memo_of(tokenizer: Tokenizer) -> WordMemo | None:
    """`memo_for(tokenizer)`, built once per process and tokenizer."""
    held = _MEMOS.get(id(tokenizer))
    if held is None or held[0] is not tokenizer:
        if len(_MEMOS) >= 4:
            _MEMOS.clear()
        held = _MEMOS[id(tokenizer)] = (tokenizer, memo_for(tokenizer))
    return held[1]


def memo_wanted() -> bool:
    """The default choice: the memo when the Rust tokenizer has one thread in this process, unless
    ``TWHIN_WORD_MEMO=0`` turns it off (the output is the same either way)."""
    if os.environ.get("TWHIN_WORD_MEMO", "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    return tokenizer_threads() == 1


def tokenizer_threads() -> int:
    """How many threads the Rust tokenizer's batch calls use in this process."""
    if os.environ.get("TOKENIZERS_PARALLELISM", "true").lower() in _FALSE:
        return 1
    value = os.environ.get("RAYON_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return usable_cores()
