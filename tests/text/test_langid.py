"""Language-ID backends: codes, determinism, offline model, and accuracy vs langdetect."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from twhin_data.text import langid
from twhin_data.text.normalize import normalize_v1_pair

LABELLED = Path(__file__).resolve().parents[2] / "twhin_data" / "data" / "sample_texts_labelled.jsonl"

# Hand-written tweet-like texts (slang, mentions, URLs, emoji), 10 languages.
TWEETS = [
    ("en", "@mike lol no way that game last night was insane 😂 https://t.co/abc"),
    ("en", "can't believe it's already monday again, send coffee pls"),
    ("en", "just finished the new season and honestly the ending was kinda disappointing"),
    ("es", "jajaja no puedo más con este calor, alguien vamos a la playa?"),
    ("es", "@ana feliz cumpleaños amiga!! te quiero mucho 🎂🎉"),
    ("es", "mañana tengo examen de matemáticas y no he estudiado nada"),
    ("pt", "gente que saudade de viajar, alguém me leva pra praia por favor"),
    ("pt", "hoje o trânsito em São Paulo está impossível, cheguei atrasado de novo"),
    ("pt", "@joao valeu demais pela ajuda ontem, você é o cara"),
    ("fr", "je suis tellement fatigué aujourd'hui, vivement le week-end"),
    ("fr", "@marie merci beaucoup pour ton message, ça me touche vraiment ❤️"),
    ("fr", "quelqu'un a vu le match hier soir ? quelle fin incroyable"),
    ("de", "endlich Wochenende! Heute Abend gehen wir ins Kino"),
    ("de", "@tom danke für die Einladung, ich komme gerne vorbei"),
    ("de", "die Bahn hat schon wieder Verspätung, das ist doch nicht zu fassen"),
    ("ja", "今日はめっちゃ暑かった〜アイス食べたい"),
    ("ja", "@yuki 昨日はありがとう！また遊ぼうね😊"),
    ("ja", "新しいアルバム最高すぎて一日中聴いてる"),
    ("ko", "오늘 날씨 진짜 좋다 산책 가고 싶어"),
    ("ko", "@minji 생일 축하해!! 맛있는 거 많이 먹어"),
    ("ko", "이번 주말에 영화 보러 갈 사람?"),
    ("ar", "صباح الخير يا جماعة، يوم سعيد للجميع"),
    ("ar", "@ahmed شكرا جزيلا على المساعدة يا صديقي"),
    ("ar", "الجو اليوم حار جدا ولا أستطيع الخروج من البيت"),
    ("ru", "наконец-то пятница, всем хороших выходных!"),
    ("ru", "@ivan спасибо большое, было очень приятно встретиться"),
    ("ru", "сегодня опять пробки по всему городу, ужас"),
    ("tr", "bugün hava çok güzel, sahilde yürüyüş yapmak lazım"),
    ("tr", "@ayse doğum günün kutlu olsun canım, nice mutlu yıllara"),
    ("tr", "maç çok heyecanlıydı ama sonunda kaybettik maalesef"),
    ("id", "selamat pagi semua, semoga hari ini menyenangkan"),
    ("id", "@budi makasih banyak ya udah bantuin kemarin"),
    ("id", "macet banget hari ini, telat lagi deh ke kantor"),
]


def _accuracy(detector: langid.LanguageDetector, rows: list[tuple[str, str]]) -> float:
    texts = [normalize_v1_pair(text)[1] for _lang, text in rows]
    langs, _ = detector.detect(texts, [None] * len(texts))
    return sum(got == want for got, (want, _text) in zip(langs, rows, strict=True)) / len(rows)


def _labelled() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["lang"], r["text"]) for r in rows]


def test_model_ships_with_the_wheel() -> None:
    path = langid.fasttext_model_path()
    assert path.endswith("lid.176.ftz")
    assert langid.load_fasttext() is langid.load_fasttext()  # loaded once per process


def test_canonical_codes() -> None:
    assert langid.canonical("in") == "id"
    assert langid.canonical("iw") == "he"
    assert langid.canonical("zh-cn") == "zh"
    for code in ("und", "qst", "zxx", "qme", None, ""):
        assert langid.canonical(code) == "und"
    assert langid.canonical("EN") == "en"


def test_x_backend_maps_api_codes() -> None:
    langs, scores = langid.get_detector("x").detect(["a", "b", "c", "d"], ["in", "iw", "qst", "ja"])
    assert langs == ["id", "he", "und", "ja"]
    assert scores == [None] * 4


@pytest.mark.parametrize("name", ["fasttext", "langdetect"])
def test_empty_and_symbol_only_texts_are_und(name: str) -> None:
    langs, scores = langid.get_detector(name).detect(["", "   ", "1234 5678", "😂🐱 🥺😭", "🇺🇦👋🏿 👍❤️"])
    assert langs == ["und"] * 5
    assert scores == [0.0] * 5


def test_low_confidence_is_und() -> None:
    langs, scores = langid.get_detector("fasttext", min_score=0.999999).detect(["ok"])
    assert langs == ["und"] and scores[0] < 0.999999


@pytest.mark.parametrize("name", ["fasttext", "langdetect"])
def test_deterministic(name: str) -> None:
    texts = [text for _lang, text in TWEETS]
    first = langid.get_detector(name).detect(texts)
    second = langid.get_detector(name).detect(list(reversed(texts)))
    assert first[0] == list(reversed(second[0]))


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown language detector"):
        langid.get_detector("cld3")


def test_fasttext_no_worse_than_langdetect_on_tweets() -> None:
    fast = _accuracy(langid.get_detector("fasttext"), TWEETS)
    slow = _accuracy(langid.get_detector("langdetect"), TWEETS)
    assert len({lang for lang, _ in TWEETS}) >= 8
    assert fast >= slow, (fast, slow)
    assert fast >= 0.9


def test_fasttext_no_worse_than_langdetect_on_bundled_labelled_set() -> None:
    rows = _labelled()[::3]  # 170 texts, every language of the set
    assert len({lang for lang, _ in rows}) >= 8
    fast = _accuracy(langid.get_detector("fasttext"), rows)
    slow = _accuracy(langid.get_detector("langdetect"), rows)
    assert fast >= slow, (fast, slow)
    assert fast >= 0.95


def test_detection_view_drops_what_carries_no_language() -> None:
    view = langid.detection_view
    assert view("RT Olá #Brasil 2024 😀😀 Tudo bem?") == "olá brasil tudo bem?"
    assert view("I got 99 problems #2day") == "i got problems day"
    assert view("ＷＯＷ ＃日本 🇯🇵") == "ｗｏｗ 日本"  # full-width hashtag mark, flag pictographs
    assert view("Artículo 3 → ver ⬇️") == "artículo ver"
    assert view("Rtl ist ein Sender") == "rtl ist ein sender"  # not an RT prefix


def test_x_lang_decides_only_when_the_detector_is_unsure() -> None:
    guesses = [("en", 0.2), ("pt", 0.15), ("es", 0.1)]
    assert langid.decide(guesses, "pt", 0.3) == ("pt", 0.15)  # unsure, and X's lang is a guess
    assert langid.decide(guesses, "de", 0.3) == ("und", 0.2)  # X's lang is not among them
    assert langid.decide(guesses, None, 0.3) == ("und", 0.2)
    assert langid.decide([("en", 0.9), ("pt", 0.05)], "pt", 0.3) == ("en", 0.9)  # confident: kept
    assert langid.decide([], "pt", 0.3) == ("und", 0.0)
    assert langid.decide(guesses, "qme", 0.3) == ("und", 0.2)  # an X pseudo code is no evidence
    detector = langid.get_detector("fasttext", min_score=0.99)  # everything is "unsure" here
    langs, _ = detector.detect(["Bom dia a todos, vamos trabalhar"], ["pt"])
    assert langs == ["pt"]


def test_detection_view_writes_elongated_letters_once() -> None:
    assert langid.detection_view("kkkkkkk felizzzzz SOOOO good, cool") == "k feliz so good, cool"


def _reference_view(text: str) -> str:
    """detection_view before the triple test: elongation folded on every text, before spaces."""
    text = langid._HASH_MARK.sub("", text)
    text = text.translate(langid._ASCII_DIGITS) if text.isascii() else langid._NO_LANGUAGE.sub(" ", text)
    if text[:4].lstrip()[:2].lower() == "rt":
        text = langid._RT.sub("", text)
    return " ".join(re.sub(r"(\w)\1{2,}", r"\1", text.lower()).split())


def test_detection_view_shortcuts_give_the_reference_view() -> None:
    rng = random.Random(5)
    pieces = ["a", "aa", "aaa", "É", "éé", "ééé", "ß", "_", "__", "___", "1", "22", "333", "٣٣٣", " ", "   ",
              "\u3000", "\u2003", "\n", "\t", "\x1c", ".", "...", "!!!", "#", "＃", "#x", "😀", "😀😀😀",
              "\ufe0f", "RT", "rt:", "Rt ", "日本", "本本本", "ккк", "k", "K", "KKK", "kK", "o", "O"]  # fmt: skip
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(20_000)]
    texts += [text for _, text in TWEETS]
    for text in texts:
        assert langid.detection_view(text) == _reference_view(text), repr(text)


def test_detect_fast_path_decides_as_decide_does() -> None:
    predict = langid.load_fasttext().f.predict
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]
    texts = [text for _, text in TWEETS] + [row["text"] for row in rows] + ["", "😀 123", "ok", "jajaja"]
    x_langs = [[None, "pt", "en", "es", "qme"][i % 5] for i in range(len(texts))]
    for min_score in (0.0, 0.15, 0.5, 0.99):
        expected = ([], [])
        for text, x_lang in zip(texts, x_langs, strict=True):
            view = langid.detection_view(text)
            result = predict(view + "\n", 3, 0.0, "replace") if langid.has_letters(view) else None
            if result is None:
                lang, score = "und", 0.0
            else:
                guesses = [(langid.canonical(label[9:]), min(float(p), 1.0)) for p, label in result]
                lang, score = langid.decide(guesses, x_lang, min_score)
            expected[0].append(lang)
            expected[1].append(score)
        assert langid.get_detector("fasttext", min_score).detect(texts, x_langs) == expected
