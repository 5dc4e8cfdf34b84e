"""Tweet embedding files -> tweet IDs and vectors (pure: no Beam; pool processes import it).

Formats: Parquet (an id column and a vector column, as `twhin-data embed` writes them),
PyTorch-BigGraph's TSV export (``name<TAB>v1<TAB>v2...``) and its HDF5 checkpoints (with h5py).
Entity names ``t<id>`` (ours) or bare decimal IDs are tweets; anything else (``u<id>`` users) is
counted and skipped. Used by the one-worker search (pairs.EmbeddingPairs) and the distributed
one (ann.DistributedKnnPairs).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.core import files
from twhin_data.core.errors import ConfigError, error_record
from twhin_data.transforms.graph.tweet_map import TweetMap

ID_COLUMNS = ("tweet_id", "id", "name", "entity")
VECTOR_COLUMNS = ("embedding", "vector", "emb", "embeddings")
EMBEDDING_SUFFIXES = (".parquet", ".tsv", ".txt", ".h5")


def _tweet_id(name: str) -> str | None:
    """PBG entity names: 't<id>' (ours) or a bare decimal ID are tweets; 'u<id>' are users."""
    name = name.strip()
    if name.startswith("t"):
        name = name[1:]
    return name if name.isdigit() and len(name) <= 19 else None


def read_embeddings(path: str) -> tuple[list[str], list[np.ndarray], list[tuple[str, str, str]]]:
    """One embeddings file -> (names, vectors, bad rows as (input, error_type, message))."""
    names, vectors, bad = [], [], []
    if path.endswith(".parquet"):
        with files.open_read(path) as handle:
            table = pq.read_table(pa.BufferReader(handle.read()))
        id_col, vec_col = columns_of(table.column_names)
        if id_col is None or vec_col is None:
            raise ConfigError(
                f"{path}: needs an id column ({'/'.join(ID_COLUMNS)}) and a vector column ({'/'.join(VECTOR_COLUMNS)})"
            )
        ids = table.column(id_col).cast(pa.string()).to_pylist()
        for name, vec in zip(ids, table.column(vec_col).to_pylist(), strict=True):
            names.append(name or "")
            vectors.append(np.asarray(vec if vec is not None else [], dtype=np.float32))
    elif path.endswith(".h5"):
        names, vectors = _read_pbg_h5(path)
    else:
        with io.BytesIO(files.read_bytes(path)) as handle:  # .gz and friends decompressed
            for raw in handle:
                parts = raw.decode("utf-8", errors="replace").rstrip("\r\n").split("\t")
                try:
                    vec = np.asarray(parts[1:], dtype=np.float32)  # C-speed string -> float32
                except ValueError:
                    bad.append((parts[0][:200], "bad_vector", "vector values are not numbers"))
                    continue
                names.append(parts[0])
                vectors.append(vec)
    return names, vectors, bad


def _read_pbg_h5(path: str) -> tuple[list[str], list[np.ndarray]]:
    """A PBG checkpoint `embeddings_<type>_<part>.v<N>.h5` (dataset "embeddings") and its names,
    `entity_names_<type>_<part>.json`, looked up beside it or in PBG's `data/` beside `model/`."""
    import h5py  # checked at submit time (check_embeddings)

    directory, name = path.rsplit("/", 1) if "/" in path else (".", path)
    stem = name.split(".v")[0].replace("embeddings_", "entity_names_", 1) + ".json"
    candidates = [files.join(directory, stem), files.join(directory, "..", "data", stem)]
    names_path = next((c for c in candidates if files.exists(c)), None)
    if names_path is None:
        raise ConfigError(f"{path}: entity names not found (looked for {', '.join(candidates)})")
    with files.open_read(path) as handle, h5py.File(handle, "r") as h5:
        emb = np.asarray(h5["embeddings"], dtype=np.float32)
    return [str(n) for n in json.loads(files.read_bytes(names_path))], list(emb)


def file_vectors(path: str, tweet_map: TweetMap | None, dim: int | None = None) -> tuple[list[int], list, list, dict]:
    """One embeddings file -> (tweet IDs, vectors, dead letters, counts): names that are not tweets
    are counted, bad vectors are dead letters, benchmark tweets dropped and copies moved to their
    kept tweet (`tweet_map`), a tweet repeated inside the file counted. `dim`: the expected length."""
    names, vectors, bad = read_embeddings(path)
    errors = [error_record("graph", text, kind, message, path) for text, kind, message in bad]
    counts = dict.fromkeys(EMBEDDING_COUNTS, 0)
    valid: list[int] = []
    good: list = []
    for name, vec in zip(names, vectors, strict=True):
        counts["embeddings_read"] += 1
        tweet = _tweet_id(str(name))
        if tweet is None:
            counts["embeddings_not_tweets"] += 1
            continue
        dim = dim or len(vec)
        if len(vec) == 0 or len(vec) != dim or not np.all(np.isfinite(vec)) or not np.any(vec):
            message = f"vector must have {dim} finite values, not all zero (got {len(vec)})"
            errors.append(error_record("graph", name, "bad_vector", message, path))
            continue
        valid.append(int(tweet))
        good.append(vec)
    mapped = np.array(valid, np.uint64)
    excluded = np.zeros(mapped.size, bool)
    if tweet_map is not None:  # one lookup for the file: a copy's vector stands for its kept tweet
        mapped, remapped, excluded = tweet_map.lookup(mapped)
        counts["embeddings_benchmark_excluded"] = int(excluded.sum())
        counts["embeddings_remapped_to_kept"] = int((remapped & ~excluded).sum())
    ids: list[int] = []
    vecs: list = []
    seen: set[int] = set()
    for value, vec, out in zip(mapped.tolist(), good, excluded.tolist(), strict=True):
        if out:
            continue
        if value in seen:
            counts["embeddings_duplicate"] += 1
            continue
        seen.add(value)
        ids.append(value)
        vecs.append(vec)
    return ids, vecs, errors, counts


EMBEDDING_COUNTS = (
    "embeddings_read",
    "embeddings_not_tweets",
    "embeddings_duplicate",
    "embeddings_benchmark_excluded",
    "embeddings_remapped_to_kept",
)


def columns_of(names: list[str]) -> tuple[str | None, str | None]:
    """(id column, vector column) among a Parquet file's column names (None where missing)."""
    return next((c for c in ID_COLUMNS if c in names), None), next((c for c in VECTOR_COLUMNS if c in names), None)


def vector_dim(paths: list[str]) -> int | None:
    """The length of the first non-empty vector in the Parquet files (None: no vector). Reads
    the vector column one row group at a time, so this submit-time look stays cheap."""
    for path in paths:
        with files.open_read(path) as handle:
            parquet = pq.ParquetFile(handle)
            _, column = columns_of(parquet.schema_arrow.names)
            for group in range(parquet.num_row_groups if column else 0):
                for vec in parquet.read_row_group(group, columns=[column]).column(0).to_pylist():
                    if vec:
                        return len(vec)
    return None

