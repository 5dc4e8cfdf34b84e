"""Benchmark contamination: which texts copy a benchmark tweet (pure, no Beam).

The paper measured contamination with character 50-gram overlap: a benchmark tweet is
contaminated when one of its 50-character spans occurs in the pretraining corpus. `BenchmarkIndex`
holds the benchmark's dev/test tweets and answers, for any text, which of them it copies:

- the same tweet ID;
- the same *match view* (`match_view`: the normalized text without mention and URL placeholders,
  hashtag marks, emoji, digits, punctuation and case), so a copy with another link, mention,
  emoji, case or punctuation is caught even when it is shorter than 50 characters;
- a shared 50-character span of the match views (the paper's criterion; a copy with one word
  changed shares one when the tweet is long enough).

The spans are kept as Python strings in a dict (the benchmarks' dev and test splits are small:
thousands of tweets); a text is checked span by span, ~100 dict lookups for a tweet.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.text.langid import detection_view

NGRAM = 50
_PLACEHOLDERS = re.compile(r"(?<!\w)(?:@user|http)(?!\w)")
_NOT_WORD = re.compile(r"[^\w]+|_+")


def match_view(text: str) -> str:
    """Letters of `text`, case folded, one space between words (see the module docstring)."""
    view = detection_view(_PLACEHOLDERS.sub(" ", text or ""))
    return " ".join(_NOT_WORD.sub(" ", view).split())


@dataclass
class BenchmarkIndex:
    """Benchmark tweets (key: ``benchmark/lang/tweet_id``) by ID, by match view and by 50-gram."""

    ids: dict[str, str] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    grams: dict[str, str] = field(default_factory=dict)
    shared: dict[str, set[str]] = field(default_factory=dict)  # grams of more than one tweet

    def add(self, key: str, tweet_id: str | None, text: str | None) -> None:
        if tweet_id:
            self.ids.setdefault(tweet_id, key)
        view = match_view(text or "")
        if not view:
            return
        self.views.setdefault(view, key)
        for gram in ngrams(view):
            first = self.grams.setdefault(gram, key)
            if first != key:
                self.shared.setdefault(gram, {first}).add(key)

    def match(self, tweet_id: str | None, text: str | None) -> str | None:
        """The key of a benchmark tweet that `(tweet_id, text)` copies, or None."""
        if tweet_id and tweet_id in self.ids:
            return self.ids[tweet_id]
        view = match_view(text or "")
        if view in self.views:
            return self.views[view]
        grams = self.grams
        for gram in ngrams(view):
            key = grams.get(gram)
            if key is not None:
                return key
        return None

    def matches(self, text: str) -> set[str]:
        """Every benchmark key that shares a 50-gram with `text` (the contamination measure)."""
        found: set[str] = set()
        for gram in ngrams(match_view(text)):
            key = self.grams.get(gram)
            if key is not None:
                found.update(self.shared.get(gram, (key,)))
        return found


SPLITS = ("validation", "test")


def load_index(benchmarks: Iterable[str]) -> BenchmarkIndex:
    """The dev and test tweets of built benchmarks (`twhin-data benchmark hashtag|engagement`
    output folders), keyed ``<benchmark folder name>/<lang>/<split>/<tweet_id>``: the hashtag
    benchmark's ``<lang>/{validation,test}.parquet``, the engagement benchmark's
    ``<lang>/tweets.parquet`` rows of those splits."""
    index = BenchmarkIndex()
    for root in benchmarks:
        name = posixpath.basename(root.rstrip("/").replace("\\", "/"))
        for lang_dir in files.list_dirs(root):
            lang = posixpath.basename(lang_dir.rstrip("/").replace("\\", "/"))
            tables = []
            for path in files.list_parquet(lang_dir):
                stem = posixpath.basename(path.replace("\\", "/"))[: -len(".parquet")]
                if stem in SPLITS:  # hashtag: tweet_id and text; engagement records: tweet_id only
                    table = files.read_parquet_table(path, ["tweet_id", "text"], present_only=True)
                    if "text" not in table.column_names:
                        table = table.append_column("text", pa.nulls(table.num_rows, pa.string()))
                    tables.append(table.append_column("split", pa.array([stem] * table.num_rows, pa.string())))
                elif stem == "tweets":
                    table = files.read_parquet_table(path, ["tweet_id", "text", "split"])
                    tables.append(table.filter(pc.is_in(table.column("split"), pa.array(SPLITS, pa.string()))))
            for table in tables:
                columns = (table.column(c).to_pylist() for c in ("tweet_id", "text", "split"))
                for tweet_id, text, split in zip(*columns, strict=True):
                    index.add(f"{name}/{lang}/{split}/{tweet_id}", tweet_id, text)
    return index


def ngrams(view: str, n: int = NGRAM) -> Iterable[str]:
    return (view[i : i + n] for i in range(len(view) - n + 1))


def brute_force_overlap(benchmark: list[str], corpus: list[str], n: int = NGRAM) -> int:
    """How many benchmark texts share an n-gram with any corpus text, the slow way (for tests)."""
    views = [match_view(t) for t in corpus]
    count = 0
    for text in benchmark:
        view = match_view(text)
        grams = {view[i : i + n] for i in range(len(view) - n + 1)}
        count += any(g in c for c in views for g in grams)
    return count
