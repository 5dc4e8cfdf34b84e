"""Golden tests pinning normalize_v1: a published normalizer never changes its output."""

from __future__ import annotations

import pytest

from twhin_data.core.errors import RecordError
from twhin_data.text.normalize import normalize_v1, normalize_v1_pair, normalizer_name

ZWJ, ZWNJ = "\u200d", "\u200c"

# (case id, input, expected with the defaults: placeholders on, RT kept)
GOLDEN = [
    # 16 languages, 10 scripts (Latin, Japanese, Han, Hangul, Arabic, Hebrew, Devanagari, Cyrillic, Thai, Greek)
    ("en_html_entities", "I can&#39;t wait for the weekend!! &lt;3", "I can't wait for the weekend!! <3"),
    ("es_nbsp_emoji", "¡Qué  bonito\u00a0día en Madrid! 😍", "¡Qué bonito día en Madrid! 😍"),
    ("pt_newline", "Bom dia, pessoal!\nVamos à praia?", "Bom dia, pessoal! Vamos à praia?"),
    ("fr_curly_quotes_kept", "C’est l\u2019été… à Paris", "C’est l’été… à Paris"),
    ("de_nfc", "Straße in Mu\u0308nchen ist schön", "Straße in München ist schön"),
    ("tr_dotted_i", "İstanbul'da hava çok güzel", "İstanbul'da hava çok güzel"),
    (
        "ja_fullwidth_at_ideographic_space",
        "今日は\u3000いい天気ですね！＠tanaka さん",
        "今日は いい天気ですね！@user さん",
    ),
    ("zh_zero_width_space", "我喜欢这个城市\u200b，真的很美", "我喜欢这个城市，真的很美"),
    ("ko_mention_url", "안녕하세요 여러분 @kim_01 https://t.co/AbC", "안녕하세요 여러분 @user http"),
    ("ar_rlm_marks", "\u200fمرحبا بالعالم\u200f @ali", "مرحبا بالعالم @user"),
    ("he_rtl_embedding", "\u202bשלום עולם\u202c", "שלום עולם"),
    ("fa_zwnj_kept", f"می{ZWNJ}خواهم به خانه بروم", f"می{ZWNJ}خواهم به خانه بروم"),
    ("hi_zwj_kept", f"क्{ZWJ}ष नमस्ते दोस्तों", f"क्{ZWJ}ष नमस्ते दोस्तों"),
    ("ru_tab_spaces", "Привет,\tмир!  Как дела?", "Привет, мир! Как дела?"),
    ("th_soft_hyphen", "สวัสดีครับ\u00adทุกคน", "สวัสดีครับทุกคน"),
    ("el_plain", "Καλημέρα κόσμε", "Καλημέρα κόσμε"),
    # emoji: ZWJ sequences and skin tones survive; stray ZWJ goes
    ("emoji_skin_tone_zwj", f"👩🏽{ZWJ}💻 coding", f"👩🏽{ZWJ}💻 coding"),
    ("emoji_family", f"👨{ZWJ}👩{ZWJ}👧{ZWJ}👦 family", f"👨{ZWJ}👩{ZWJ}👧{ZWJ}👦 family"),
    ("emoji_vs16_flag", f"🏳️{ZWJ}🌈 pride", f"🏳️{ZWJ}🌈 pride"),
    (
        "emoji_tag_flag",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f flag",
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f flag",
    ),
    ("stray_zwj", f"hi{ZWJ}there {ZWJ}", "hithere"),
    # surrogate pairs held as two code points are joined
    ("surrogate_pair", "smile \ud83d\ude00 ok", "smile 😀 ok"),
    # mojibake repair
    ("mojibake", "CafÃ© at Ã¼ber", "Café at über"),
    # invisible and control characters
    ("bom_word_joiner", "x\ufeffy\u2060z", "xyz"),
    ("controls", "\x00ctrl\x07chars\x1b", "ctrlchars"),
    ("whitespace", "tab\tnew\nline\r\n end ", "tab new line end"),
    ("double_escaped", "&amp;amp; &nbsp;x", "&amp; x"),
    # mentions and URLs inside words
    ("email_not_mention", "email me@example.com or @bob!", "email me@example.com or @user!"),
    ("mention_after_word", "word@user123 and (@ann)", "word@user123 and (@user)"),
    ("mention_chain", "@someone@other", "@someone@other"),
    ("url_punctuation", "see:https://t.co/x), or http://a.b/c.", "see:http), or http."),
    ("url_glued_to_word", "abchttps://t.co/x", "abchttps://t.co/x"),
    ("url_after_cjk", "日本@bob見てhttps://t.co/xyz」", "日本@user見てhttp」"),
    ("noncharacter_removed", "a\ufdd0b @c", "ab @user"),
]


@pytest.mark.parametrize(("case", "text", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(case: str, text: str, expected: str) -> None:
    assert normalize_v1(text) == expected


def test_golden_covers_languages_and_scripts() -> None:
    languages = {c[0].split("_")[0] for c in GOLDEN[:16]}
    assert len(languages) >= 12


def test_no_placeholders_keeps_entities() -> None:
    text = "email me@example.com or @bob! https://t.co/x"
    assert normalize_v1(text, placeholders=False) == text


def test_strip_rt() -> None:
    assert normalize_v1("RT @news: Breaking story https://t.co/z", strip_rt=True) == "Breaking story http"
    assert normalize_v1("RT @news: Breaking", strip_rt=True, placeholders=False) == "Breaking"
    assert normalize_v1("RT: not a retweet", strip_rt=True) == "RT: not a retweet"
    assert normalize_v1("RT @news: Breaking") == "RT @user: Breaking"


def test_entity_offsets_used_when_they_match() -> None:
    text = "hi bob_x and https://t.co/x"
    # offsets that match the text: used even where the regex would not fire ("bob_x" has no @)
    assert (
        normalize_v1(text, urls=[{"start": 13, "end": 27, "value": "https://t.co/x"}]) == "hi bob_x and http"
    )
    mentions = [{"start": 0, "end": 4, "value": "alic"}]
    assert normalize_v1("@alice hi", mentions=mentions) == "@user hi"  # mismatch -> regex


def test_entity_offsets_in_code_points_with_emoji() -> None:
    text = "😀😀 @bob x"
    assert normalize_v1(text, mentions=[{"start": 3, "end": 7, "value": "bob"}]) == "😀😀 @user x"


def test_language_id_text_has_no_placeholders() -> None:
    out, lid = normalize_v1_pair("@bob Bonjour à tous https://t.co/x !")
    assert out == "@user Bonjour à tous http !"
    assert lid == "Bonjour à tous !"


def test_lone_surrogate_rejected_with_reason() -> None:
    with pytest.raises(RecordError) as info:
        normalize_v1("broken \ud83d text")
    assert info.value.error_type == "lone_surrogate"
    assert "code point 7" in info.value.message


def test_idempotent_on_golden_outputs() -> None:
    # Unescaping is the one step that is not idempotent ("&amp;amp;" -> "&amp;" -> "&").
    for case, _text, expected in GOLDEN:
        if case != "double_escaped":
            assert normalize_v1(expected) == expected, case


def test_normalizer_name() -> None:
    assert normalizer_name("normalize_v1") == "normalize_v1+user+http"
    assert normalizer_name("normalize_v1", placeholders=False, strip_rt=True) == "normalize_v1+raw+rt"
