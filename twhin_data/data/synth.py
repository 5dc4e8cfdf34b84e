"""Deterministic synthetic multilingual tweets, engagements and ID lists (all text written by us).

Same seed -> same output, byte for byte. Everything streams (generators), so a million tweets never
sit in memory. Tweets have the X API v2 tweet-object shape; the ground truth the API does not carry
(true language, kind, the retweeted original) travels beside each tweet as a ``TweetInfo``.
Engagements, communities, embeddings and ID lists are generated in synth_logs.py.
"""

from __future__ import annotations

import bisect
import functools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from twhin_data.data.synth_logs import iso_ms, snowflake, user_id

START_MS = 1640995200000  # 2022-01-01T00:00:00Z
TCO_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CASED = ("Latin", "Cyrillic")
_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


@dataclass(frozen=True)
class Language:
    """One language of the generator (see synth_lexicon.json)."""

    code: str  # true ISO 639-1 code
    x: str  # the code X reports in `lang` (in = Indonesian, iw = Hebrew)
    script: str
    weight: float
    joiner: str
    stop: str
    phrases: tuple[str, ...]
    hashtags: tuple[str, ...]
    fillers: tuple[str, ...]  # interjections and slang (lol, jajaja, kkkk, 555, www)


class TweetInfo(NamedTuple):
    """Ground truth kept out of the API object."""

    true_lang: str  # ISO 639-1 code, or "und" for tweets without words
    script: str  # Unicode script of the words ("none" for und)
    kind: str  # original, reply, quote, retweet, note (long original)
    original: dict | None  # the retweeted tweet (API object) for kind == retweet


@functools.lru_cache(maxsize=1)
def lexicon() -> dict:
    """The hand-written phrase lists (twhin_data/data/synth_lexicon.json)."""
    return json.loads((Path(__file__).parent / "synth_lexicon.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def languages() -> tuple[Language, ...]:
    """All languages, most common first (weights are Zipf-like)."""
    out = []
    for code, spec in lexicon()["languages"].items():
        out.append(
            Language(
                code=code,
                x=spec["x"],
                script=spec["script"],
                weight=float(spec["weight"]),
                joiner=spec["joiner"],
                stop=spec["stop"],
                phrases=tuple(p.translate(_ESCAPE) for p in spec["phrases"]),  # as X escapes them
                hashtags=tuple(spec["hashtags"]),
                fillers=tuple(spec["fillers"]),
            )
        )
    return tuple(sorted(out, key=lambda lang: -lang.weight))


def user_name(index: int) -> str:
    """The @username of synthetic user `index`."""
    parts = lexicon()["name_parts"]
    return f"{parts[index % len(parts)]}_{parts[(index // len(parts)) % len(parts)]}{index}"


def _tco(rng: random.Random) -> str:
    return "https://t.co/" + "".join(rng.choices(TCO_ALPHABET, k=10))


def _truncate(text: str, limit: int) -> int:
    """Cut position <= limit - 1 that does not split an HTML entity such as &amp;."""
    cut = limit - 1
    amp = text.rfind("&", max(0, cut - 4), cut)
    if amp != -1 and text.find(";", amp) >= cut:
        cut = amp
    return cut


class _Builder:
    """Accumulates escaped text pieces and entity spans (code-point offsets into the escaped text)."""

    __slots__ = ("parts", "pos", "hashtags", "mentions", "urls")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.hashtags: list[dict] = []
        self.mentions: list[dict] = []
        self.urls: list[dict] = []

    def add(self, piece: str) -> None:
        """Appends text that is already escaped as X escapes it (& < > as &amp; &lt; &gt;)."""
        self.parts.append(piece)
        self.pos += len(piece)

    def hashtag(self, tag: str) -> None:
        self.hashtags.append({"start": self.pos, "end": self.pos + 1 + len(tag), "tag": tag})
        self.add("#" + tag)

    def mention(self, index: int) -> None:
        name = user_name(index)
        self.mentions.append(
            {"start": self.pos, "end": self.pos + 1 + len(name), "username": name, "id": user_id(index)}
        )
        self.add("@" + name)

    def url(self, url: str, expanded: str) -> None:
        display = expanded.split("://", 1)[1]
        display = display if len(display) <= 26 else display[:25] + "…"
        self.urls.append(
            {
                "start": self.pos,
                "end": self.pos + len(url),
                "url": url,
                "expanded_url": expanded,
                "display_url": display,
            }
        )
        self.add(url)

    def text(self) -> str:
        return "".join(self.parts)

    def entities(self, limit: int | None = None) -> dict:
        out = {}
        for key in ("hashtags", "mentions", "urls"):
            spans = getattr(self, key)
            if limit is not None:
                spans = [s for s in spans if s["end"] <= limit]
            if spans:
                out[key] = spans
        return out


class _TweetFactory:
    """Stateful generator: clock, Snowflake sequence, author pool, recent tweets to reply/quote/retweet."""

    def __init__(self, seed: int, n_users: int, mean_gap_ms: int) -> None:
        self.rng = random.Random(seed)
        self.n_users = n_users
        self.mean_gap_ms = mean_gap_ms
        self.now = START_MS + self.rng.randrange(86_400_000)
        self.langs = languages()
        total = sum(lang.weight for lang in self.langs)
        acc, self.cum = 0.0, []
        for lang in self.langs:
            acc += lang.weight / total
            self.cum.append(acc)
        self.by_code = {lang.code: lang for lang in self.langs}
        self.recent: list[tuple[dict, TweetInfo, int]] = []  # (tweet, info, author index)
        emoji = lexicon()["emoji"]
        self.emoji = emoji["simple"] * 4 + emoji["skin_tone"] + emoji["zwj"] + emoji["flags"]
        self.hosts = lexicon()["url_hosts"]

    def _user(self) -> int:
        return int(self.n_users * self.rng.random() ** 3)  # power law: a few very active authors

    def _lang(self) -> Language:
        return self.langs[min(bisect.bisect(self.cum, self.rng.random()), len(self.langs) - 1)]

    def _words(self, b: _Builder, lang: Language, budget: int, min_len: int) -> None:
        """Appends 1-5 phrases (or, with min_len, a long post of at least min_len code points)."""
        random_ = self.rng.random
        r = random_()
        n = 1 if r < 0.3 else 2 if r < 0.62 else 3 if r < 0.82 else 4 if r < 0.95 else 5
        phrases, size = lang.phrases, len(lang.phrases)
        used: set[int] = set()
        spaced, cased = lang.joiner == " ", lang.script in _CASED
        sentence = lang.stop + lang.joiner if spaced else lang.stop
        comma = ", " if spaced and lang.script != "Thai" else lang.joiner
        pieces: list[str] = []
        length = 0
        for i in range(n if not min_len else 40):
            pick = int(random_() * size)
            if len(used) == size:  # a long post that used every phrase starts over
                used.clear()
            while pick in used:  # no phrase twice in one tweet
                pick = (pick + 1) % size
            used.add(pick)
            phrase = phrases[pick]
            if i and length + len(phrase) > budget and length >= min_len:
                break
            capital = i == 0
            if i:
                r = random_()
                if r < 0.04 and spaced:
                    sep, capital = " &amp; ", False
                elif r < 0.6 and lang.stop:
                    sep, capital = sentence, True
                else:
                    sep, capital = comma, False
                pieces.append(sep)
                length += len(sep)
            if capital and cased:
                phrase = phrase[0].upper() + phrase[1:]
            pieces.append(phrase)
            length += len(phrase)
            if min_len and length >= min_len and random_() < 0.3:
                break
        r = random_()
        pieces.append(lang.stop if r < 0.5 else "!" if r < 0.62 else "?" if r < 0.7 else "")
        if random_() < 0.3:
            pieces.append(lang.joiner + lang.fillers[int(random_() * len(lang.fillers))])
        if random_() < 0.03:
            pieces.append(" &lt;3" if random_() < 0.5 else " -&gt;")
        b.add("".join(pieces))

    def _extras(self, b: _Builder, lang: Language | None) -> None:
        rng = self.rng
        if lang is not None and rng.random() < 0.35:
            tags = lang.hashtags
            first = tags[int(len(tags) * rng.random() ** 2)]
            chosen = [first] if rng.random() < 0.75 else [first, rng.choice(tags)]
            for tag in dict.fromkeys(chosen):
                b.add(" ")
                b.hashtag(tag)
        if rng.random() < 0.35:
            b.add(" ")
            for _ in range(1 + int(rng.random() ** 3 * 3)):
                b.add(rng.choice(self.emoji))
        if rng.random() < 0.15:
            b.add(" ")
            b.url(_tco(rng), f"https://{rng.choice(self.hosts)}/{rng.randrange(10**6)}")

    def next(self) -> tuple[dict, TweetInfo]:
        rng = self.rng
        self.now += 1 + int(rng.expovariate(1.0 / self.mean_gap_ms))
        tid = str(snowflake(self.now, int(rng.random() * 1024), int(rng.random() * 4096)))
        author = self._user()
        r = rng.random()
        parent = self.recent[int(rng.random() * len(self.recent))] if self.recent else None
        if parent is not None and r < 0.12:
            return self._retweet(tid, author, parent)  # retweets never enter `recent`: no RT of an RT
        kind = "reply" if parent and r < 0.27 else "quote" if parent and r < 0.35 else "original"
        if kind == "original" and rng.random() < 0.02:
            kind = "note"
        b = _Builder()
        lang: Language | None = self._lang()
        if kind == "reply" and rng.random() < 0.8:
            lang = self.by_code.get(parent[1].true_lang, lang)  # replies mostly follow the thread
        x_lang = lang.x
        if kind == "reply":
            b.mention(parent[2])
            b.add(" ")
        elif rng.random() < 0.06:
            b.mention(self._user())
            b.add(" ")
        body = rng.random()
        if kind == "quote" and body < 0.15:
            lang, x_lang = None, "qst"
        elif kind != "note" and body < 0.025:
            lang, x_lang = None, "und"
            b.add(rng.choice(self.emoji) + rng.choice(self.emoji))
        else:
            self._words(b, lang, 2000 if kind == "note" else 200, 300 if kind == "note" else 0)
        if x_lang != "qst":  # qst: a quote tweet whose text is only the quoted tweet's link
            self._extras(b, lang)
        if kind == "quote":
            b.add(" " if b.pos else "")
            qid = parent[0]["id"]
            b.url(_tco(rng), f"https://twitter.com/{user_name(parent[2])}/status/{qid}")
        text = b.text()
        tweet = self._envelope(tid, author, x_lang)
        if len(text) > 280:  # a long post: X truncates `text` and sends the full one in note_tweet
            cut = _truncate(text, 280)
            tweet["text"] = text[:cut] + "…"
            tweet["note_tweet"] = {"text": text}
            entities = b.entities()
            if entities:
                tweet["note_tweet"]["entities"] = entities
            entities = b.entities(limit=cut)
        else:
            kind = "original" if kind == "note" else kind
            tweet["text"] = text
            entities = b.entities()
        if entities:
            tweet["entities"] = entities
        if kind in ("reply", "quote"):
            ptweet = parent[0]
            if kind == "reply":
                tweet["conversation_id"] = ptweet["conversation_id"]
                tweet["in_reply_to_user_id"] = ptweet["author_id"]
            tweet["referenced_tweets"] = [
                {"type": "replied_to" if kind == "reply" else "quoted", "id": ptweet["id"]}
            ]
        info = TweetInfo(lang.code if lang else "und", lang.script if lang else "none", kind, None)
        self.recent.append((tweet, info, author))
        if len(self.recent) > 512:
            del self.recent[: len(self.recent) - 384]
        return tweet, info

    def _envelope(self, tid: str, author: int, x_lang: str) -> dict:
        rng = self.rng
        likes = int(rng.paretovariate(1.1)) - 1
        edits = [tid] if rng.random() > 0.01 else [tid, str(int(tid) + (rng.randrange(1, 3_600_000) << 22))]
        return {
            "id": tid,
            "text": "",
            "lang": x_lang,
            "created_at": iso_ms(self.now),
            "author_id": user_id(author),
            "conversation_id": tid,
            "edit_history_tweet_ids": edits,
            "possibly_sensitive": rng.random() < 0.02,
            "public_metrics": {
                "retweet_count": likes // 7,
                "reply_count": likes // 11,
                "like_count": likes,
                "quote_count": likes // 40,
            },
        }

    def _retweet(self, tid: str, author: int, parent: tuple[dict, TweetInfo, int]) -> tuple[dict, TweetInfo]:
        orig, oinfo, oauthor = parent
        b = _Builder()
        b.add("RT ")
        b.mention(oauthor)
        b.add(": ")
        prefix = b.pos
        src = orig.get("note_tweet") or orig
        full = "RT @" + user_name(oauthor) + ": " + src["text"]
        tweet = self._envelope(tid, author, orig["lang"])
        tweet["public_metrics"] = dict(orig["public_metrics"], like_count=0, reply_count=0, quote_count=0)
        cut = len(full)
        if len(full) > 140:
            cut = _truncate(full, 140)
            tweet["text"] = full[:cut] + "…"
        else:
            tweet["text"] = full
        spans = b.entities()
        for key, items in src.get("entities", {}).items():
            shifted = [dict(s, start=s["start"] + prefix, end=s["end"] + prefix) for s in items]
            shifted = [s for s in shifted if s["end"] <= cut]
            if shifted:
                spans[key] = spans.get(key, []) + shifted
        tweet["entities"] = spans
        tweet["referenced_tweets"] = [{"type": "retweeted", "id": orig["id"]}]
        return tweet, TweetInfo(oinfo.true_lang, oinfo.script, "retweet", orig)


def generate_labelled_tweets(
    n: int, seed: int = 0, *, n_users: int = 10_000, mean_gap_ms: int = 2_000
) -> Iterator[tuple[dict, TweetInfo]]:
    """Yields `n` (API tweet object, TweetInfo) pairs; IDs and created_at strictly increase."""
    factory = _TweetFactory(seed, n_users, mean_gap_ms)
    for _ in range(n):
        yield factory.next()


def generate_tweets(n: int, seed: int = 0, **kwargs) -> Iterator[dict]:
    """Yields `n` X API v2 tweet objects (see generate_labelled_tweets for the ground truth)."""
    for tweet, _ in generate_labelled_tweets(n, seed, **kwargs):
        yield tweet


def generate_labelled_texts(n_per_language: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """Yields short plain texts with their true language, round-robin over every language."""
    rng = random.Random(seed)
    langs = languages()
    for i in range(n_per_language * len(langs)):
        lang = langs[i % len(langs)]
        k = 1 + int(rng.random() * 2.5)
        phrases = rng.sample(lang.phrases, k)
        yield lang.joiner.join(phrases) + lang.stop, lang.code
