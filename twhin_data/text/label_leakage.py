"""Label-hashtag removal and leakage checks for the hashtag-prediction benchmark (pure, no Beam).

The TwHIN-BERT hashtag benchmark asks the model to predict a hashtag that was removed from the
tweet, so the label must not survive in the text in any spelling. Matching rules:

- A hashtag is a ``#`` (U+0023) or full-width ``＃`` (U+FF03) followed by the longest run of
  hashtag characters: letters, combining marks (Devanagari, Arabic, Thai vowel signs ...),
  numbers, ``_``, ZWNJ/ZWJ and the Catalan middle dot. Python's ``\\w`` is not used because it
  misses combining marks (``#हिंदी`` would be cut after ``ह``).
- The hashtag matches a label when their keys are equal: NFKC, full Unicode case folding
  (``casefold``: ``ß`` = ``ss``), and Turkish-insensitive ``i`` (``İ``, ``I``, ``ı`` and ``i``
  all match), then NFC. The body must end at the label's end: ``#Parisian`` is not ``#paris``.
- Unlike twitter-text, a ``#`` glued to a preceding word (``東京に行く#東京``, common in CJK
  tweets) still counts: for leakage removal, over-matching is the safe side.

Example::

    >>> remove_label_hashtag("Ich liebe #Straße und #STRASSE!", "strasse")
    ('Ich liebe und!', 2)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

HASH_MARKS = frozenset("#\uff03")
_MARK_RE = re.compile("[#\uff03]")
#: Characters allowed inside a hashtag besides letters, marks and numbers.
_EXTRA_TAG_CHARS = frozenset("_\u200c\u200d\u00b7\u30fb")


@dataclass(frozen=True)
class Hashtag:
    """One hashtag occurrence: ``text[start:end]`` is the mark plus `body`."""

    start: int
    end: int
    body: str


def is_tag_char(ch: str) -> bool:
    """True for characters that continue a hashtag (letters, marks, numbers, _, ZWNJ/ZWJ, ·)."""
    return unicodedata.category(ch)[0] in "LMN" or ch in _EXTRA_TAG_CHARS


def clean_label(raw: str) -> str:
    """The label as written in a label file, without surrounding space or leading ``#``/``＃``, NFC."""
    text = unicodedata.normalize("NFC", raw.strip())
    while text and text[0] in HASH_MARKS:
        text = text[1:]
    return text.strip()


def label_key(label: str) -> str:
    """Comparison key of a label or hashtag body: NFKC, casefold, dotless/dotted i folded, NFC."""
    key = unicodedata.normalize("NFKC", label).casefold()
    # casefold("İ") is "i" + U+0307; Turkish lower-case "ı" has no fold: both mean "i" here.
    key = key.replace("i\u0307", "i").replace("\u0131", "i")
    return unicodedata.normalize("NFC", key)


def find_hashtags(text: str) -> list[Hashtag]:
    """Every hashtag in `text`, left to right (a mark followed by no tag character is skipped)."""
    found: list[Hashtag] = []
    n = len(text)
    for match in _MARK_RE.finditer(text):
        i = match.start()
        if found and i < found[-1].end:
            continue
        j = i + 1
        while j < n and is_tag_char(text[j]):
            j += 1
        if j > i + 1:
            found.append(Hashtag(i, j, text[i + 1 : j]))
    return found


def label_hashtags(text: str, label: str) -> list[Hashtag]:
    """The occurrences of `label` as a hashtag in `text` (any case, ``#`` or ``＃``)."""
    key = label_key(clean_label(label))
    return [tag for tag in find_hashtags(text) if label_key(tag.body) == key]


def contains_label_hashtag(text: str, label: str) -> bool:
    """True when `label` occurs as a hashtag in `text`."""
    return bool(label_hashtags(text, label))


def remove_label_hashtag(text: str, label: str) -> tuple[str, int]:
    """Removes every occurrence of `label` as a hashtag; returns (new text, occurrences removed).

    Each removed hashtag takes one adjacent space with it (the following one, else the preceding
    one), so ``"I love #Paris today"`` becomes ``"I love today"``; the result is stripped.
    """
    spans = label_hashtags(text, label)
    if not spans:
        return text, 0
    pieces: list[str] = []
    cursor = 0
    for tag in spans:
        start, end = tag.start, tag.end
        if end < len(text) and text[end].isspace():
            end += 1
        elif start > cursor and text[start - 1].isspace():
            start -= 1
        pieces.append(text[cursor:start])
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces).strip(), len(spans)


def other_label_hashtags(text: str, label: str, candidate_keys: frozenset[str] | set[str]) -> list[str]:
    """Hashtags in `text` that are candidate labels (by key) other than `label`, in order."""
    own = label_key(clean_label(label))
    return [
        tag.body for tag in find_hashtags(text) if (k := label_key(tag.body)) in candidate_keys and k != own
    ]


@dataclass(frozen=True)
class LeakageResult:
    """Outcome of `strip_label`: the text without the label, or the reason the example is dropped."""

    text: str
    removed: int
    reason: str | None  # None when the example is kept
    detail: str = ""


def strip_label(
    text: str, label: str, candidate_keys: frozenset[str] | set[str] = frozenset()
) -> LeakageResult:
    """Removes `label`'s hashtag and checks the example is leak-free.

    Reasons: ``label_not_in_text`` (the tweet does not carry the label as a hashtag),
    ``label_leak_remains`` (a label hashtag survives removal, e.g. ``##paris``),
    ``other_label_hashtag`` (another candidate label of the language is in the text),
    ``empty_after_removal`` (nothing but the hashtag).
    """
    new_text, removed = remove_label_hashtag(text, label)
    if removed == 0:
        return LeakageResult(text, 0, "label_not_in_text", f"no #{label} in the text")
    if contains_label_hashtag(new_text, label):
        return LeakageResult(
            new_text, removed, "label_leak_remains", f"#{label} still in the text after removal"
        )
    others = other_label_hashtags(new_text, label, candidate_keys)
    if others:
        return LeakageResult(
            new_text, removed, "other_label_hashtag", "other candidate label(s): " + ", ".join(others[:5])
        )
    if not new_text.strip():
        return LeakageResult(new_text, removed, "empty_after_removal", "only the label hashtag was left")
    return LeakageResult(new_text, removed, None)
