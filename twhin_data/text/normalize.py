"""Versioned tweet text normalization (pure functions, no Beam).

Public API::

    normalize_v1(text, *, mentions=None, urls=None, placeholders=True, strip_rt=False) -> str
    normalize_v1_pair(text, *, mentions=None, urls=None, placeholders=True, strip_rt=False)
        -> (text_for_training, text_for_language_id)
    normalizer_name("normalize_v1", placeholders=True, strip_rt=False) -> "normalize_v1+user+http"
    NORMALIZERS: {"normalize_v1": normalize_v1_pair}

`normalize_v1` applies, in this order:

1. ``@user`` / ``http`` placeholders (default on). `mentions` / `urls` are the hydrate entity
   spans (dicts with code-point ``start``, ``end``, ``value`` into `text`); they are used when every
   span of that kind matches the text (``text[start:end]`` is ``@value`` / ``value``), otherwise
   regexes are used: a mention is ``@name`` (1-15 of ``[A-Za-z0-9_]``) not preceded by an ASCII
   letter, digit or ``_!#$%&*@`` (so ``me@example.com`` is not a mention, ``日本@bob`` is), and a
   URL is ``http(s)://...`` not preceded by an ASCII letter or digit, without trailing punctuation.
2. HTML entity unescape (``&amp;`` -> ``&``), only when the text holds an ``&``.
3. Mojibake repair (UTF-8 read as cp1252/Latin-1, e.g. ``CafÃ©`` -> ``Café``) with
   ``ftfy.fix_encoding``, only when the text holds a UTF-8 lead-byte look-alike followed by a
   continuation-byte look-alike (so ordinary accented text never reaches ftfy).
4. Surrogates: a UTF-16 surrogate pair held as two code points is joined into one character;
   a lone surrogate raises ``RecordError("lone_surrogate", ...)`` (the caller dead-letters it).
5. Unicode NFC.
6. Invisible characters out: C0/C1 controls (other than whitespace), soft hyphen, zero-width
   space, BOM, bidi marks and embeddings/isolates (LRM, RLM, ALM, LRE..RLO, LRI..PDI), word
   joiner, noncharacters. ZWJ (U+200D) is kept between two emoji (family/profession sequences,
   skin tones) and between two letters of a script that uses it (Indic U+0900-U+0DFF, Arabic,
   Syriac); ZWNJ (U+200C) is kept between two such letters (Persian ``می‌خواهم``); both go elsewhere.
7. Whitespace collapse: every run of whitespace (including newlines, NBSP, U+3000) becomes one
   ASCII space; leading and trailing whitespace is stripped.
8. Optional ``RT @name:`` prefix strip (`strip_rt`).

The language-ID text (second item of `normalize_v1_pair`) is the same text with mentions and
URLs removed instead of replaced, so placeholders never bias the detector towards English.

Versioning rule: a published normalizer never changes its output. Behaviour changes go into a
new ``normalize_v2``; golden tests (tests/text/test_normalize_golden.py) pin ``normalize_v1``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from twhin_data.core.errors import RecordError

MENTION_PLACEHOLDER = "@user"
URL_PLACEHOLDER = "http"

# Noncharacters used as in-band markers while normalizing; any in the input are removed first.
_MENTION_MARK = "\ufdd0"
_URL_MARK = "\ufdd1"
_NONCHARACTERS = re.compile("[\ufdd0-\ufdef\ufffe\uffff]")

_MENTION_RE = re.compile(r"(?<![A-Za-z0-9_!#$%&*@＠])[@＠][A-Za-z0-9_]{1,15}(?![A-Za-z0-9_@＠])")
_URL_RE = re.compile(r"(?<![A-Za-z0-9])https?://[^\s\ufdd0\ufdd1]+", re.IGNORECASE)
_URL_TRAILING = ".,!?;:'\")]}>…»」』】、。！？"

# A UTF-8 lead byte (0xC2-0xF4) read as Latin-1/cp1252, followed by a continuation byte
# (0x80-0xBF) read the same way: the signature of mojibake. Only such texts reach ftfy.
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")

# Explicit list (not unicodedata categories) so the output cannot change with Python's Unicode
# database version. Whitespace controls (\t \n \v \f \r, U+0085) are left to the collapse step.
_DROP = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0001]"
)
_JOINERS = re.compile("[\u200c\u200d]")
_RT_PREFIX = re.compile(r"^RT (?:\ufdd0|[@＠][A-Za-z0-9_]{1,15}):?\s*")


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or cp in (0xFE0F, 0x2640, 0x2642, 0x2695, 0x2696, 0x2708, 0x2764, 0x2B50, 0x2B1B, 0x2B1C)
        or 0x1F3FB <= cp <= 0x1F3FF
    )


def _is_joining_script(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x0900 <= cp <= 0x0DFF  # Devanagari .. Sinhala
        or 0x0600 <= cp <= 0x06FF  # Arabic, Persian, Urdu
        or 0x0700 <= cp <= 0x077F  # Syriac, Arabic supplement
        or 0x08A0 <= cp <= 0x08FF
        or 0xFB50 <= cp <= 0xFDFF
        or 0xFE70 <= cp <= 0xFEFC
    )


def _keep_joiners(text: str) -> str:
    """Drops ZWJ/ZWNJ except where emoji sequences or Indic/Arabic shaping need them."""
    out = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in "\u200c\u200d":
            prev = text[i - 1] if i > 0 else ""
            nxt = text[i + 1] if i < last else ""
            if not prev or not nxt:
                continue
            if ch == "\u200d" and _is_emoji(prev) and _is_emoji(nxt):
                out.append(ch)
            elif _is_joining_script(prev) and _is_joining_script(nxt):
                out.append(ch)
            continue
        out.append(ch)
    return "".join(out)


def _valid_spans(text: str, spans: Sequence[dict] | None, prefix: str) -> list[tuple[int, int]] | None:
    """The (start, end) spans when every one matches `text`, else None (fall back to regexes)."""
    if not spans:
        return None
    out = []
    previous_end = 0
    for span in sorted(spans, key=lambda s: s.get("start") or 0):
        start, end, value = span.get("start"), span.get("end"), span.get("value") or ""
        if start is None or end is None or start < previous_end or end > len(text) or start >= end:
            return None
        piece = text[start:end]
        if prefix:
            if piece[:1] not in "@＠" or piece[1:].lower() != value.lstrip("@＠").lower():
                return None
        elif piece != value:
            return None
        out.append((start, end))
        previous_end = end
    return out


def _replace_spans(text: str, spans: list[tuple[int, int]], mark: str) -> str:
    parts = []
    cursor = 0
    for start, end in spans:
        parts.append(text[cursor:start])
        parts.append(mark)
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


def _url_mark(match: re.Match) -> str:
    url = match.group(0)
    stripped = url.rstrip(_URL_TRAILING)
    return _URL_MARK + url[len(stripped) :] if stripped else url


def _mark_entities(text: str, mentions: Sequence[dict] | None, urls: Sequence[dict] | None) -> str:
    """Replaces mentions and URLs with in-band marks (entity offsets first, regexes otherwise)."""
    mention_spans = _valid_spans(text, mentions, "@")
    url_spans = _valid_spans(text, urls, "")
    if mention_spans and url_spans:
        spans = sorted(
            [(s, e, _MENTION_MARK) for s, e in mention_spans] + [(s, e, _URL_MARK) for s, e in url_spans]
        )
        if all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)):
            parts, cursor = [], 0
            for start, end, mark in spans:
                parts += [text[cursor:start], mark]
                cursor = end
            return "".join(parts) + text[cursor:]
        mention_spans = url_spans = None
    if url_spans:
        text = _replace_spans(text, url_spans, _URL_MARK)
    elif mention_spans:
        text = _replace_spans(text, mention_spans, _MENTION_MARK)
    if not url_spans and ("http" in text or "HTTP" in text or "Http" in text):
        text = _URL_RE.sub(_url_mark, text)
    if not mention_spans and ("@" in text or "＠" in text):
        text = _MENTION_RE.sub(_MENTION_MARK, text)
    return text


def _fix_mojibake(text: str) -> str:
    if not _MOJIBAKE_HINT.search(text):
        return text
    import ftfy  # imported lazily: most texts never need it

    return ftfy.fix_encoding(text)


def _join_surrogates(text: str) -> str:
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise RecordError(
            "lone_surrogate", f"text holds a lone UTF-16 surrogate at code point {_lone_surrogate_at(text)}"
        ) from None


def _lone_surrogate_at(text: str) -> int:
    i = 0
    while i < len(text):
        cp = ord(text[i])
        if 0xD800 <= cp <= 0xDBFF and i + 1 < len(text) and 0xDC00 <= ord(text[i + 1]) <= 0xDFFF:
            i += 2
            continue
        if 0xD800 <= cp <= 0xDFFF:
            return i
        i += 1
    return -1


def _core_v1(text: str, mentions, urls, placeholders: bool) -> str:
    if _NONCHARACTERS.search(text):
        # Offsets no longer match once characters are removed: use regexes.
        text, mentions, urls = _NONCHARACTERS.sub("", text), None, None
    text = _join_surrogates(text)
    if placeholders:
        text = _mark_entities(text, mentions, urls)
    if "&" in text:
        text = html.unescape(text)
    text = _fix_mojibake(text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _DROP.sub("", text)
    if "\u200c" in text or "\u200d" in text:
        text = _keep_joiners(text)
    return " ".join(text.split())


def normalize_v1_pair(
    text: str,
    *,
    mentions: Sequence[dict] | None = None,
    urls: Sequence[dict] | None = None,
    placeholders: bool = True,
    strip_rt: bool = False,
) -> tuple[str, str]:
    """Normalizes one tweet; returns (training text, language-ID text without mentions/URLs).

    Raises:
      RecordError: ``lone_surrogate`` when the text holds an unpaired UTF-16 surrogate.
    """
    marked = _core_v1(text, mentions, urls, True)
    if strip_rt:
        marked = _RT_PREFIX.sub("", marked, count=1)
    lid = marked
    if _MENTION_MARK in lid or _URL_MARK in lid:
        lid = " ".join(lid.replace(_MENTION_MARK, " ").replace(_URL_MARK, " ").split())
    if placeholders:
        out = marked.replace(_MENTION_MARK, MENTION_PLACEHOLDER).replace(_URL_MARK, URL_PLACEHOLDER)
    else:
        out = _core_v1(text, None, None, False)
        if strip_rt:
            out = _RT_PREFIX.sub("", out, count=1)
    return out, lid


def normalize_v1(
    text: str,
    *,
    mentions: Sequence[dict] | None = None,
    urls: Sequence[dict] | None = None,
    placeholders: bool = True,
    strip_rt: bool = False,
) -> str:
    """Normalizes one tweet's text with version 1 of the rules (see the module docstring).

    Example: ``normalize_v1("RT @bob: Caf&eacute;\u200b  https://t.co/x", strip_rt=True)``
    -> ``"Café http"``.
    """
    return normalize_v1_pair(
        text, mentions=mentions, urls=urls, placeholders=placeholders, strip_rt=strip_rt
    )[0]


#: name -> function(text, *, mentions, urls, placeholders, strip_rt) -> (text, language-ID text)
NORMALIZERS: dict[str, Callable[..., tuple[str, str]]] = {"normalize_v1": normalize_v1_pair}


def normalizer_name(name: str, *, placeholders: bool = True, strip_rt: bool = False) -> str:
    """The `normalizer` column value: version plus switches, e.g. ``normalize_v1+user+http+rt``."""
    suffix = "+user+http" if placeholders else "+raw"
    return name + suffix + ("+rt" if strip_rt else "")


def get_normalizer(name: str) -> Callable[..., Any]:
    """The pair function registered under `name`; ValueError naming the known ones otherwise."""
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown normalizer {name!r} (known: {', '.join(sorted(NORMALIZERS))})") from None
