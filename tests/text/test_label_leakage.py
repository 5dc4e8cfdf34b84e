"""Label-hashtag removal: no label hashtag survives (any case, any script), plain words stay."""

from __future__ import annotations

import pytest

from twhin_data.text.label_leakage import (
    clean_label,
    contains_label_hashtag,
    find_hashtags,
    label_key,
    remove_label_hashtag,
    strip_label,
)

# (language, script, text, label, expected text after removal)
CASES = [
    (
        "en",
        "Latin",
        "Watching the game tonight #WorldCup #worldcup so good",
        "worldcup",
        "Watching the game tonight so good",
    ),
    ("en", "Latin", "#WORLDCUP starts today, worldcup fever!", "WorldCup", "starts today, worldcup fever!"),
    ("es", "Latin", "¡Qué partidazo! #Fútbol #FÚTBOL", "fútbol", "¡Qué partidazo!"),
    ("de", "Latin", "Ich liebe #Straße und #STRASSE!", "strasse", "Ich liebe und!"),
    ("tr", "Latin", "Bugün #İstanbul çok güzel, #ISTANBUL #istanbul", "istanbul", "Bugün çok güzel,"),
    ("tr", "Latin", "Hava güzel #Izmir #ızmir", "İzmir", "Hava güzel"),
    ("ru", "Cyrillic", "Отличный матч #Футбол и снова #ФУТБОЛ", "футбол", "Отличный матч и снова"),
    ("ar", "Arabic", "مباراة رائعة #كرة_القدم اليوم", "كرة_القدم", "مباراة رائعة اليوم"),
    ("ja", "Japanese", "今日は東京に行く#東京 ＃東京 楽しい", "東京", "今日は東京に行く楽しい"),
    ("hi", "Devanagari", "आज का मैच #क्रिकेट शानदार #क्रिकेट", "क्रिकेट", "आज का मैच शानदार"),
    ("el", "Greek", "Καλημέρα #ΑΘΗΝΑ #Αθήνα", "αθηνα", "Καλημέρα #Αθήνα"),
    ("ko", "Hangul", "오늘 경기 #축구 최고", "축구", "오늘 경기 최고"),
    ("th", "Thai", "วันนี้ #ฟุตบอล สนุกมาก", "ฟุตบอล", "วันนี้ สนุกมาก"),
]


@pytest.mark.parametrize(
    ("lang", "script", "text", "label", "expected"), CASES, ids=[c[0] + "-" + c[1] for c in CASES]
)
def test_removal_in_many_languages(lang, script, text, label, expected):
    new_text, removed = remove_label_hashtag(text, label)
    assert new_text == expected
    assert removed >= 1
    assert not contains_label_hashtag(new_text, label)
    # Any case of the label as a hashtag is gone.
    for variant in {label, label.upper(), label.lower(), label.casefold(), label.title()}:
        assert not contains_label_hashtag(new_text, variant)


def test_coverage_of_languages_and_scripts():
    assert len({c[0] for c in CASES}) >= 6
    assert len({c[1] for c in CASES}) >= 3


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love football and Football", "football"),
        ("Istanbul çok güzel", "istanbul"),
        ("東京に行く", "東京"),
        ("Футбол это жизнь", "футбол"),
        ("क्रिकेट मैच", "क्रिकेट"),
        ("#footballer is not the label", "football"),
        ("#Parisian style", "paris"),
    ],
)
def test_label_word_without_hash_is_kept(text, label):
    assert remove_label_hashtag(text, label) == (text, 0)
    result = strip_label(text, label)
    assert result.reason == "label_not_in_text"


def test_hashtag_boundaries_keep_combining_marks():
    # \w would stop after "क"; the whole Devanagari word must be one hashtag.
    tags = find_hashtags("x #क्रिकेट y ＃東京_2020")
    assert [t.body for t in tags] == ["क्रिकेट", "東京_2020"]
    assert remove_label_hashtag("#क्रिकेटर", "क्रिकेट") == ("#क्रिकेटर", 0)


def test_label_key_and_clean_label():
    assert clean_label("  ＃Tokyo ") == "Tokyo"
    assert clean_label("##x") == "x"
    assert label_key("İSTANBUL") == label_key("istanbul") == label_key("ıstanbul")
    assert label_key("Straße") == label_key("STRASSE")
    assert label_key("ＴＯＫＹＯ") == label_key("tokyo")  # NFKC folds full-width letters


def test_strip_label_reasons():
    keys = {label_key("paris"), label_key("london")}
    assert strip_label("Hello #Paris", "paris", keys).text == "Hello"
    assert strip_label("Hello #Paris #London", "paris", keys).reason == "other_label_hashtag"
    assert strip_label("#PARIS", "paris", keys).reason == "empty_after_removal"
    assert strip_label("Paris in spring", "paris", keys).reason == "label_not_in_text"
    kept = strip_label("Paris in spring #paris #travel", "paris", keys)
    assert kept.reason is None and kept.text == "Paris in spring #travel"


def test_every_occurrence_and_spacing():
    assert remove_label_hashtag("#a b #A c #a", "a") == ("b c", 3)
    assert remove_label_hashtag("go #paris!", "paris") == ("go!", 1)
    assert remove_label_hashtag("##paris here", "paris") == ("#here", 1)
