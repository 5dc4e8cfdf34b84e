"""Other well-kept language detectors, for bench/bench_langid_real.py --compare (not dependencies of
twhin-data: `pip install lingua-language-detector pycld2 cld3-py` to run the comparison).

Each returns one canonical code (or ``und``) per text, given the detection view of the text.
"""

from __future__ import annotations

from twhin_data.text import langid


def lingua_detect(views: list[str]) -> list[str]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
    out = []
    for result in detector.detect_languages_in_parallel_of(views):
        out.append(langid.canonical(result.iso_code_639_1.name.lower()) if result is not None else langid.UNKNOWN)
    return out


def cld2_detect(views: list[str]) -> list[str]:
    import pycld2

    out = []
    for view in views:
        try:
            reliable, _, details = pycld2.detect(view)
            code = details[0][1] if details and details[0][1] != "un" else "und"
        except pycld2.error:
            code = "und"
        out.append(langid.canonical(code))
    return out


def cld3_detect(views: list[str]) -> list[str]:
    import gcld3

    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    out = []
    for view in views:
        result = detector.FindLanguage(text=view)
        out.append(langid.canonical(result.language) if result.is_reliable or result.probability > 0.5 else langid.UNKNOWN)
    return out


def vote(primary: list[str], scores: list[float], others: list[list[str]], below: float) -> list[str]:
    """lid.176's answer, unless its score is below `below` and the other detectors all agree on
    another language."""
    out = []
    for i, (lang, score) in enumerate(zip(primary, scores, strict=True)):
        alt = {o[i] for o in others}
        if score is not None and score < below and len(alt) == 1 and (choice := alt.pop()) != langid.UNKNOWN:
            out.append(choice)
        else:
            out.append(lang)
    return out
