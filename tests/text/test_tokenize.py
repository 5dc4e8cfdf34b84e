"""text.tokenize: loading (file, directory, Hub cache, errors), special ids, encoding, packing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.core.errors import ConfigError
from twhin_data.text import tokenize as tk

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "twhin_data" / "data" / "tokenizer.json"


def test_bundled_tokenizer_has_xlmr_layout_and_is_small():
    tok, info = tk.load_tokenizer("bundled")
    assert info.special_ids == {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": info.vocab_size - 1}
    assert info.special_tokens["mask"] == "<mask>" and info.pad_id == 1
    assert info.vocab_size == 8000 and info.adds_special_tokens
    assert BUNDLED.stat().st_size < 1_500_000
    ids = tok.encode("hola mundo").ids
    assert ids[0] == 0 and ids[-1] == 2


def test_special_ids_are_read_not_assumed(tmp_path):
    """A BERT-style vocabulary: the ids come from the file, whatever they are."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[PAD]": 5, "[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 3, "hello": 4, "world": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    path = tmp_path / "bert.json"
    tok.save(str(path))
    _tok, info = tk.load_tokenizer(str(path))
    assert info.special_ids == {"bos": 1, "pad": 5, "eos": 2, "unk": 0, "mask": 3}


def test_directory_and_hub_cache_resolution(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(BUNDLED, folder / "tokenizer.json")
    assert tk.resolve_tokenizer_path(str(folder)) == str(folder / "tokenizer.json")
    # A Hub cache laid out as huggingface_hub does: models--org--name/{refs/main, snapshots/<rev>/}.
    cache = tmp_path / "hub"
    repo = cache / "models--acme--tiny-xlmr"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    shutil.copy(BUNDLED, repo / "snapshots" / "abc123" / "tokenizer.json")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    path = tk.resolve_tokenizer_path("acme/tiny-xlmr")
    assert path.endswith("snapshots/abc123/tokenizer.json")


def test_missing_file_and_uncached_hub_name_are_clear_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ConfigError, match="tokenizer file not found: .*nope.json"):
        tk.load_tokenizer(str(tmp_path / "nope.json"))
    with pytest.raises(
        ConfigError, match="tokenizer.json of Twitter/twhin-bert-base not found under .*empty-hub"
    ):
        tk.load_tokenizer("Twitter/twhin-bert-base")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ConfigError, match="not a valid tokenizer.json"):
        tk.load_tokenizer(str(bad))


def test_encode_truncates_keeping_eos():
    tok, _ = tk.load_tokenizer("bundled")
    texts = ["short one", "word " * 200, "x"]
    ids = tk.encode_texts(tok, texts, 16)
    assert [len(x) for x in ids][1] == 16
    assert all(x[0] == 0 and x[-1] == 2 for x in ids)
    values, offsets, truncated = tk.encode_arrow(tok, texts, 16, eos_id=2)
    assert truncated.tolist() == [False, True, False]
    assert values.dtype == np.int32 and offsets[-1] == len(values)


def test_pack_boundaries_greedy_next_fit():
    assert tk.pack_boundaries(np.array([50, 60, 30, 100]), 128).tolist() == [0, 2, 3, 4]
    assert tk.pack_boundaries(np.array([128, 1, 127]), 128).tolist() == [0, 1, 3]
    assert tk.pack_boundaries(np.array([], dtype=np.int64), 128).tolist() == [0]


def test_pack_table_offsets_ids_and_langs():
    values = np.arange(10, dtype=np.int32)
    offsets = np.array([0, 3, 7, 10])  # tweets of 3, 4 and 3 ids
    cols = tk.pack_table(pa.array(["1", "2", "3"]), pa.array(["en", "ja", "ar"]), values, offsets, 7)
    rows = pa.table(cols).to_pylist()
    assert rows == [
        {
            "input_ids": [0, 1, 2, 3, 4, 5, 6],
            "tweet_offsets": [0, 3],
            "tweet_ids": ["1", "2"],
            "langs": ["en", "ja"],
            "num_tokens": 7,
        },
        {"input_ids": [7, 8, 9], "tweet_offsets": [0], "tweet_ids": ["3"], "langs": ["ar"], "num_tokens": 3},
    ]


def test_training_script_is_deterministic(tmp_path):
    """Two runs of scripts/train_tokenizer.py (small settings) write the same bytes."""
    outs = []
    for i in range(2):
        out = tmp_path / f"tok{i}.json"
        cmd = [
            sys.executable,
            str(REPO / "scripts" / "train_tokenizer.py"),
            "--n",
            "1500",
            "--vocab_size",
            "600",
        ]
        subprocess.run([*cmd, "--output", str(out), "--builtin"], check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    _tok, info = tk.load_tokenizer(str(tmp_path / "tok0.json"))
    assert info.special_ids["mask"] == info.vocab_size - 1 == 599
