"""Trains the small bundled tokenizer (twhin_data/data/tokenizer.json) with `tokenizers`.

The tokenizer has XLM-R's layout and pipeline, shrunk: a Unigram model (default 8,000 pieces)
behind an NFKC normalizer (+ runs of spaces collapsed, as XLM-R's precompiled charsmap does), a
Metaspace (``▁``) pre-tokenizer, and the XLM-R template ``<s> $A </s>``. Special ids:
``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, pieces..., ``<mask>`` last.

Training text: synthetic multilingual tweets from `twhin_data.data.synth` when that module
offers a generator, otherwise the built-in generator below (12 languages, 6 scripts, hashtags,
mentions, URLs, emoji). The run is deterministic: the text is seeded and the trainer runs on one
thread (RAYON_NUM_THREADS=1 is set before `tokenizers` is imported). The trainer alone is not
byte-stable: its EM sums jitter in the last float digits and it appends the required single
characters and ties in hash-map order, so `canonical_json` rounds the scores and orders pieces by
(score, piece).
Rerunning the script writes the same bytes.

Usage: python scripts/train_tokenizer.py [--vocab_size 8000] [--n 30000] [--seed 13]
       [--output twhin_data/data/tokenizer.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from collections.abc import Iterator

os.environ["RAYON_NUM_THREADS"] = "1"  # deterministic EM sums; must precede the tokenizers import

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
MASK = "<mask>"
DEFAULT_OUTPUT = os.path.join(os.path.dirname(__file__), "..", "twhin_data", "data", "tokenizer.json")

WORDS: dict[str, list[str]] = {
    "en": "the a is and to of in for on with this that my your love great today new time people good day "
    "game music world news video watch happy thanks week night best live free".split(),
    "es": "el la de que y en los se del las un por con no una su para es al lo como más pero sus le ya "
    "hoy gracias amor vida mundo noche fútbol".split(),
    "fr": "le la les de des et en un une est pas pour que qui dans sur au avec ce il elle nous vous "
    "très bien merci aujourd'hui monde soirée été".split(),
    "de": "der die das und ist nicht ein eine zu den mit von auf für es im dem heute danke sehr gut "
    "schön Welt Spiel Woche Straße über".split(),
    "pt": "o a de que e do da em um para é com não uma os no se na por mais as dos como mas hoje "
    "obrigado amor vida mundo coração".split(),
    "tr": "bir ve bu da de için ile çok ne var ben sen o biz siz güzel bugün teşekkürler dünya maç "
    "hayat sevgi gece şimdi".split(),
    "ru": "и в не на я что с он как это по но они мы вы все так было сегодня спасибо мир жизнь "
    "любовь игра новости время очень".split(),
    "uk": "і в не на що з як це але ми ви все так було сьогодні дякую світ життя любов гра новини "
    "час дуже".split(),
    "ar": "في من على إلى أن هذا هذه كان مع عن لا ما هو هي الله اليوم شكرا العالم الحياة الحب "
    "مباراة أخبار وقت جدا".split(),
    "hi": "है के में की और को से का एक यह पर भी नहीं हैं आज धन्यवाद दुनिया जीवन प्यार खेल समाचार समय बहुत".split(),
    "ja": "今日 ありがとう 世界 人生 愛 試合 ニュース 時間 とても 私 あなた これ それ 本当 楽しい "
    "東京 音楽 動画 映画 友達 新しい".split(),
    "zh": "今天 谢谢 世界 生活 爱 比赛 新闻 时间 非常 我 你 这个 那个 真的 快乐 北京 音乐 视频 电影 "
    "朋友 新的".split(),
    "ko": "오늘 감사합니다 세계 인생 사랑 경기 뉴스 시간 정말 나 너 이것 그것 진짜 행복 서울 음악 "
    "영상 영화 친구".split(),
    "th": "วันนี้ ขอบคุณ โลก ชีวิต ความรัก เกม ข่าว เวลา มาก ฉัน คุณ นี่ จริง มีความสุข เพลง วิดีโอ ภาพยนตร์ เพื่อน".split(),
}
NO_SPACE = {"ja", "zh", "th"}
EMOJI = ["😂", "❤️", "🔥", "🙏", "😍", "👍", "🎉", "😭", "✨", "🇧🇷", "👀", "💯"]
PUNCT = [".", "!", "?", ",", "...", "!!", ":", "…", "。", "、", "؟", "।"]


def builtin_texts(n: int, seed: int) -> Iterator[str]:
    """Seeded synthetic tweets: words of one language, plus hashtags, placeholders and emoji."""
    rng = random.Random(seed)
    langs = sorted(WORDS)
    for _ in range(n):
        lang = rng.choice(langs)
        words = [rng.choice(WORDS[lang]) for _ in range(rng.randint(3, 24))]
        if rng.random() < 0.3:
            words.insert(0, "@user")
        if rng.random() < 0.3:
            words.append("#" + rng.choice(WORDS[lang]).capitalize())
        if rng.random() < 0.2:
            words.append("http")
        if rng.random() < 0.4:
            words.append(rng.choice(EMOJI))
        if rng.random() < 0.2:
            words.append(str(rng.randint(0, 2030)))
        sep = "" if lang in NO_SPACE and rng.random() < 0.7 else " "
        yield sep.join(words) + rng.choice(PUNCT)


def synth_texts(n: int, seed: int) -> Iterator[str] | None:
    """Texts from twhin_data.data.synth (the project's generator) when it is available."""
    try:
        from twhin_data.data import synth  # noqa: PLC0415 - optional module
    except ImportError:
        return None
    for name in ("generate_texts", "texts", "generate_tweets", "tweets"):
        fn = getattr(synth, name, None)
        if callable(fn):
            try:
                items = fn(n, seed=seed)
            except TypeError:
                continue
            return (item["text"] if isinstance(item, dict) else str(item) for item in items)
    return None


def build_tokenizer(texts: Iterator[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 1,  # + <mask>, added last
        special_tokens=SPECIALS,
        unk_token="<unk>",
        show_progress=False,
        max_piece_length=16,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_special_tokens([AddedToken(MASK, lstrip=True, rstrip=False, normalized=True, special=True)])
    ids = {tok: tokenizer.token_to_id(tok) for tok in SPECIALS}
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])],
    )
    return tokenizer


def _ladder_step(step: float) -> bool:
    return abs(step) < 1e-9 or abs(step - 1e-4) < 1e-5


def canonical_json(tokenizer: Tokenizer, decimals: int = 8) -> str:
    """Serializes `tokenizer` with run-independent bytes (see the module docstring)."""
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    first = len(SPECIALS)
    end = len(vocab)
    start = end - 1
    # The required-character tail: scores step down by exactly 1e-4 from the last learned piece.
    # (steps of 1e-4 +- 1e-5, or 0 for a piece appended with the last score: the trainer's ladder
    # carries float error and may end with a tie)
    while start - 1 > first and _ladder_step(vocab[start - 1][1] - vocab[start][1]):
        start -= 1
    if end - start > 1:
        top = vocab[start][1]
        tail = sorted(piece for piece, _ in vocab[start:end])
        vocab[start:end] = [[piece, top - i * 1e-4] for i, piece in enumerate(tail)]
    rounded = [[piece, round(score, decimals)] for piece, score in vocab]
    # Equal scores (ties) come out in hash-map order too: order pieces by (score desc, piece).
    rounded[first:] = sorted(rounded[first:], key=lambda item: (-item[1], item[0]))
    data["model"]["vocab"] = rounded
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab_size", type=int, default=8000, help="Pieces including specials and <mask>.")
    parser.add_argument("--n", type=int, default=30000, help="Synthetic training tweets.")
    parser.add_argument("--seed", type=int, default=13, help="Seed of the synthetic text.")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="Where to write tokenizer.json.")
    parser.add_argument("--builtin", action="store_true", help="Use the built-in generator, not synth.")
    args = parser.parse_args(argv)
    texts = None if args.builtin else synth_texts(args.n, args.seed)
    source = "twhin_data.data.synth"
    if texts is None:
        texts, source = builtin_texts(args.n, args.seed), "builtin"
    tokenizer = build_tokenizer(texts, args.vocab_size)
    text = canonical_json(tokenizer)
    tokenizer = Tokenizer.from_str(text)  # check what we ship
    expected = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, MASK: tokenizer.get_vocab_size() - 1}
    got = {tok: tokenizer.token_to_id(tok) for tok in expected}
    if got != expected:
        sys.stderr.write(f"unexpected special ids {got} (expected {expected})\n")
        return 1
    data = text.encode("utf-8")
    with open(args.output, "wb") as handle:
        handle.write(data)
    print(
        f"wrote {args.output}: {tokenizer.get_vocab_size()} pieces, {len(data):,} bytes, "
        f"sha256 {hashlib.sha256(data).hexdigest()[:16]}, text from {source}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
