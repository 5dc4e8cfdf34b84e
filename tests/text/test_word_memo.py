"""text/word_memo.py: the memo gives exactly the ids of ``encode_batch_fast``, or is not used."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from tests.hydrate.test_archives import v1_statuses, v2_bodies
from twhin_data.data import synth
from twhin_data.text import word_memo
from twhin_data.text.normalize import normalize_v1
from twhin_data.text.tokenize import encode_arrow, load_tokenizer
from twhin_data.text.word_memo import memo_for, memo_of, tokenizer_threads

#: Pieces that stress each step: spaces of every kind, the ``▁`` mark itself, added tokens raw and
#: as NFKC makes them, combining marks, emoji sequences, scripts without spaces, controls.
HARD = [
    " ", "  ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\u200b", "\x1c", "\x1f", "\x85", "\u180e",
    "\u2028", "\u202f", "\u2581", "\u2581\u2581",
    "<s>", "</s>", "<mask>", "<pad>", "<unk>", "\uff1cmask\uff1e", "<mask", "mask>", "<", ">",
    "e\u0301", "\u0301", "\ufb01", "\uff21\uff22", "\u2460", "\u00bd", "\u1e9b\u0323",
    "\U0001F600", "\U0001F3F3\ufe0f\u200d\U0001F308", "\U0001F1E9\U0001F1EA", "#tag", "@user", "<URL>",
    "日本語", "ไทย", "עברית", "العربية", "हिन्दी", "한국어", "\u0000", "\x7f", "a", "Hello", "WORLD", "123",
    "çà", "ß", "İ", "ǅ", ".", "...", "!!!", "\U00010348",
]


def _fuzz(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(HARD) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def _raw(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch_fast(texts)]


def _texts() -> list[str]:
    tweets = list(synth.generate_tweets(3000, seed=11))
    texts = [t["text"] for t in tweets] + [normalize_v1(t["text"]) for t in tweets[:1000]]
    return texts + _fuzz(4000, seed=3) + ["", " ", "a", "\u2581", "<mask>", "x  y ", " \u2581 z"]


def _trained(model, trainer, pre, texts: list[str]) -> Tokenizer:
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" " * 2, " ")])
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainer)
    return tok


def test_bundled_tokenizer_memo_gives_the_same_ids_on_tweets_and_hard_strings():
    tok, _info = load_tokenizer("bundled")
    memo = memo_for(tok)
    assert memo is not None and memo.prefix == [0] and memo.suffix == [2]
    texts = _texts()
    assert memo.encode(texts) == _raw(tok, texts)
    assert memo.encode(texts) == _raw(tok, texts)  # second pass: every word from the memo


def _collect(node, out: list[str]) -> None:
    """Every tweet text and user description in recorded API bodies (nested tweets too)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "full_text", "description") and isinstance(value, str):
                out.append(value)
            else:
                _collect(value, out)
    elif isinstance(node, list):
        for value in node:
            _collect(value, out)


def test_memo_gives_the_same_ids_on_real_recorded_tweets(cassettes_dir):
    texts: list[str] = []
    _collect(v1_statuses(cassettes_dir) + v2_bodies(cassettes_dir), texts)
    assert len(texts) >= 200
    texts += [normalize_v1(t) for t in texts]
    tok, _info = load_tokenizer("bundled")
    assert memo_for(tok).encode(texts) == _raw(tok, texts)


def test_bpe_with_byte_fallback_and_no_prefix_space_gives_the_same_ids():
    corpus = [t["text"] for t in synth.generate_tweets(2000, seed=5)]
    tok = _trained(
        models.BPE(unk_token="<unk>", byte_fallback=True),
        trainers.BpeTrainer(vocab_size=3000, special_tokens=["<unk>", "<s>", "</s>", "<mask>"]),
        pre_tokenizers.Metaspace(prepend_scheme="never"),
        corpus,
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    memo = memo_for(tok)
    assert memo is not None and not memo.prepend
    texts = _texts()
    assert memo.encode(texts) == _raw(tok, texts)


def test_whitespace_split_then_metaspace_as_in_older_converted_files_gives_the_same_ids():
    tok, _info = load_tokenizer("bundled")
    spec = json.loads(tok.to_str())
    for scheme in ("always", "never"):
        spec["pre_tokenizer"] = {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": True},
            ],
        }
        older = Tokenizer.from_str(json.dumps(spec))
        memo = memo_for(older)
        assert memo is not None and memo.whitespace_split and memo.prepend is (scheme == "always")
        texts = _texts()
        assert memo.encode(texts) == _raw(older, texts)
    spec["pre_tokenizer"]["pretokenizers"][0] = {"type": "Punctuation", "behavior": "Isolated"}
    assert memo_for(Tokenizer.from_str(json.dumps(spec))) is None


def test_unigram_without_post_processor_has_no_specials_and_the_same_ids():
    corpus = [t["text"] for t in synth.generate_tweets(2000, seed=6)]
    tok = _trained(
        models.Unigram(),
        trainers.UnigramTrainer(vocab_size=3000, special_tokens=["<unk>"], unk_token="<unk>"),
        pre_tokenizers.Metaspace(),
        corpus,
    )
    memo = memo_for(tok)
    assert memo is not None and memo.prefix == [] and memo.suffix == []
    texts = _texts()
    assert memo.encode(texts) == _raw(tok, texts)


def test_other_layouts_get_no_memo():
    corpus = [t["text"] for t in synth.generate_tweets(500, seed=4)]
    unigram = trainers.UnigramTrainer(vocab_size=3000, special_tokens=["<unk>"], unk_token="<unk>")
    assert memo_for(_trained(models.Unigram(), unigram, pre_tokenizers.BertPreTokenizer(), corpus)) is None
    assert memo_for(_trained(models.Unigram(), unigram, pre_tokenizers.Metaspace(prepend_scheme="first"), corpus)) is None
    assert memo_for(_trained(models.Unigram(), unigram, pre_tokenizers.Metaspace(split=False), corpus)) is None
    wordpiece = trainers.WordPieceTrainer(vocab_size=3000, special_tokens=["[UNK]"])
    assert memo_for(_trained(models.WordPiece(unk_token="[UNK]"), wordpiece, pre_tokenizers.Metaspace(), corpus)) is None
    bpe = _trained(models.BPE(unk_token="<unk>"), trainers.BpeTrainer(vocab_size=3000, special_tokens=["<unk>"]),
                   pre_tokenizers.Metaspace(), corpus)
    spec = json.loads(bpe.to_str())
    spec["model"]["dropout"] = 0.5
    assert memo_for(Tokenizer.from_str(json.dumps(spec))) is None


def test_a_full_memo_keeps_its_words_and_gives_the_same_ids(monkeypatch):
    monkeypatch.setattr(word_memo, "MAX_WORDS", 50)
    tok, _info = load_tokenizer("bundled")
    memo = memo_for(tok)
    texts = _texts()[:2000]
    assert memo.encode(texts) == _raw(tok, texts)
    assert len(memo.words) == 50


def test_encode_arrow_is_the_same_with_and_without_the_memo():
    tok, info = load_tokenizer("bundled")
    texts = _texts()
    for max_length in (8, 128):
        with_memo = encode_arrow(tok, texts, max_length, eos_id=2, memo=True)
        without = encode_arrow(tok, texts, max_length, eos_id=2, memo=False)
        for a, b in zip(with_memo, without, strict=True):
            assert a.dtype == b.dtype and (a == b).all()
    assert memo_of(tok) is memo_of(tok)  # built once per tokenizer


def test_tokenizer_threads_follows_the_tokenizers_own_settings(monkeypatch):
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    monkeypatch.setenv("RAYON_NUM_THREADS", "1")
    assert tokenizer_threads() == 1
    monkeypatch.setenv("RAYON_NUM_THREADS", "3")
    assert tokenizer_threads() == 3
    for off in ("false", "0", "OFF", ""):
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", off)
        assert tokenizer_threads() == 1
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    monkeypatch.delenv("RAYON_NUM_THREADS")
    assert tokenizer_threads() >= 1


@pytest.mark.parametrize("threads,switch,expected", [("1", "1", True), ("2", "1", False), ("1", "0", False)])
def test_encode_arrow_picks_the_memo_on_one_thread(monkeypatch, threads, switch, expected):
    tok, _info = load_tokenizer("bundled")
    used = []
    memo = memo_of(tok)
    monkeypatch.setattr(memo, "encode", lambda texts: used.append(len(texts)) or _raw(tok, texts))
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    monkeypatch.setenv("RAYON_NUM_THREADS", threads)
    monkeypatch.setenv("TWHIN_WORD_MEMO", switch)
    encode_arrow(tok, ["a b", "c"], 16, eos_id=2)
    assert bool(used) is expected
