"""File helpers: local paths through the OS, URLs (gs://) through Beam's FileSystems.

Beam is imported only when a URL or a glob needs it, so a pool process (core/pool.py) that
reads and writes local files never pays for ``import apache_beam``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.core.errors import ConfigError


def _filesystems():
    from apache_beam.io.filesystems import FileSystems

    use_storage_emulator()
    return FileSystems


def use_storage_emulator() -> bool:
    """With ``STORAGE_EMULATOR_HOST`` set (a local GCS emulator, e.g. gcp-storage-emulator), Beam's
    GCS client connects anonymously at once, instead of first retrying Google's default credentials
    for about 30 s. Returns whether an emulator is configured. No effect without the variable."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return False
    from apache_beam.internal.gcp import auth  # Beam's credential cache: no public way to preset it

    with auth._Credentials._credentials_lock:  # noqa: SLF001
        if not auth._Credentials._credentials_init:  # noqa: SLF001
            auth._Credentials._credentials = None  # noqa: SLF001 - None means: anonymous client
            auth._Credentials._credentials_init = True  # noqa: SLF001
    return True


def is_remote(path: str) -> bool:
    return "://" in path


def join(base: str, *parts: str) -> str:
    """Joins path parts for local paths and URLs (gs://bucket/...)."""
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def relative_to(path: str, base: str) -> str:
    """`path` relative to the folder `base` when both are on the same disk or bucket, else `path`
    as given (so a manifest reads the same for a local run and for one on an object store)."""
    if is_remote(path) != is_remote(base):
        return path
    if not is_remote(path):
        return os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    (scheme, rest), (base_scheme, base_rest) = path.split("://", 1), base.split("://", 1)
    bucket, _, key = rest.partition("/")
    base_bucket, _, base_key = base_rest.partition("/")
    if (scheme, bucket) != (base_scheme, base_bucket):
        return path
    return posixpath.relpath("/" + key.rstrip("/"), "/" + base_key.rstrip("/"))


def shareable(value, root: str):
    """`value` (a stats or summary document) with no path of this machine in it: a local absolute
    path under `root` becomes relative to it (``.`` for `root` itself), any other local absolute
    path just its file or folder name; object-store URLs and other strings stay as they are.
    Comma-separated path lists are handled path by path."""
    if isinstance(value, dict):
        return {k: shareable(v, root) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shareable(v, root) for v in value]
    if not isinstance(value, str) or not value.startswith(("/", "\\")) and not _DRIVE.match(value):
        return value
    return ",".join(_shareable_path(part, root) for part in value.split(","))


_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _shareable_path(path: str, root: str) -> str:
    if not os.path.isabs(path) and not _DRIVE.match(path):
        return path
    if not is_remote(root):
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        if rel == "." or not rel.startswith(".."):
            return rel.replace(os.sep, "/")
    return os.path.basename(path.rstrip("/\\")) or path


def expand_inputs(pattern: str, *, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Expands a file, directory or glob (comma-separated allowed) into a sorted file list.

    A directory means every file below it (recursively) whose name ends with one of `suffixes`
    (all files if empty); a directory that an unfinished run of ours is writing (or left behind
    when it was killed) is refused (`check_complete`). Raises ConfigError naming the pattern when
    nothing matches.
    """
    files: list[str] = []
    for part in [p.strip() for p in pattern.split(",") if p.strip()]:
        if is_remote(part) and not any(ch in part for ch in "*?[") and not part.endswith(suffixes or ("",)):
            check_complete(part)  # a folder on an object store
        if "://" not in part and os.path.isdir(part):
            for root, _dirs, names in os.walk(part):
                check_complete(root)  # before its files: an unfinished run may not have written any yet
                for name in names:
                    if name.startswith((".", "_")):
                        continue
                    if not suffixes or name.endswith(suffixes):
                        files.append(os.path.join(root, name))
            continue
        if "://" in part and not any(ch in part for ch in "*?[") and not part.endswith(suffixes or ("",)):
            part = part.rstrip("/") + "/**"
        matches = _filesystems().match([part])[0].metadata_list
        files.extend(m.path for m in matches if not suffixes or m.path.endswith(suffixes))
    files = sorted(set(files))
    if not files:
        raise ConfigError(f"no input files match {pattern!r}")
    for folder in sorted({posixpath.dirname(f) if is_remote(f) else os.path.dirname(f) for f in files}):
        check_complete(folder)
    return files


def exists(path: str) -> bool:
    return _filesystems().exists(path) if is_remote(path) else os.path.exists(path)


def total_size(paths: list[str]) -> int:
    """Bytes of the files `paths` (local or gs://; globs matched), e.g. to size partitions by input."""
    return sum(m.size_in_bytes for result in _filesystems().match(list(paths)) for m in result.metadata_list)


def open_read(path: str):
    """A binary, seekable read handle (local file or FileSystems stream, no decompression)."""
    if is_remote(path):
        return _filesystems().open(path, compression_type="uncompressed")
    return open(path, "rb")


#: Suffixes Beam's FileSystems decompresses on read (read_bytes keeps that behaviour).
_COMPRESSED = (".gz", ".bz2", ".zst", ".deflate", ".lzma", ".xz", ".snappy")


class _DecompressedHandle:
    """Beam's CompressedFile with `closed` as an attribute: Beam defines it as a method, which a
    pyarrow reader (pyarrow.PythonFile) takes for "closed" and refuses to read from."""

    def __init__(self, handle):
        self._handle = handle

    @property
    def closed(self) -> bool:
        return self._handle.closed()

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __iter__(self):
        return iter(self._handle.readline, b"")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


def open_decompressed(path: str):
    """A binary read handle that decompresses by suffix, as Beam's FileSystems.open (Beam is
    imported only for remote or compressed files)."""
    if is_remote(path) or path.lower().endswith(_COMPRESSED):
        handle = _filesystems().open(path)
        return _DecompressedHandle(handle) if callable(getattr(handle, "closed", None)) else handle
    return open(path, "rb")


def read_bytes(path: str) -> bytes:
    """The whole file; compressed files (by suffix) are decompressed, like FileSystems.open."""
    with open_decompressed(path) as handle:
        return handle.read()


@contextlib.contextmanager
def open_write_atomic(path: str):
    """A binary write handle to a temporary name beside `path`, renamed into place when the block
    ends without an error (removed when it raises); object stores get a streamed upload."""
    parent = posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)
    if parent and not is_remote(parent):
        os.makedirs(parent, exist_ok=True)
    tmp = join(parent, f".tmp-{os.getpid()}-{posixpath.basename(path)}")
    if not is_remote(path):
        try:
            with open(tmp, "wb") as handle:
                yield handle
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # a full disk must not also leave a half-written file
                os.remove(tmp)
            raise
        return
    filesystems = _filesystems()
    with filesystems.create(tmp) as handle:
        yield handle
    if filesystems.exists(path):
        filesystems.delete([path])
    filesystems.rename([tmp], [path])


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes `data` to a temporary name beside `path`, then renames it into place."""
    with open_write_atomic(path) as handle:
        handle.write(data)


def remove(path: str) -> None:
    """Deletes the file or folder `path` with everything under it; nothing there is no error.

    On object stores (no folders) that is every object under ``path/``, else the object `path`.
    """
    if not is_remote(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
        return
    from apache_beam.io.filesystem import BeamIOError

    filesystems = _filesystems()

    def matches(pattern: str) -> list[str]:
        try:
            return [m.path for result in filesystems.match([pattern]) for m in result.metadata_list]
        except BeamIOError:  # nothing matches
            return []

    found = matches(posixpath.join(path.rstrip("/"), "**")) or matches(path)
    if found:
        filesystems.delete(sorted(set(found)))


def write_json(path: str, value: object) -> None:
    """Writes pretty, key-sorted JSON (deterministic bytes) atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def table_to_parquet_bytes(
    table: pa.Table, *, row_group_size: int = 50_000, compression: str = "zstd"
) -> bytes:
    """Serializes a table to Parquet bytes with settings that give identical bytes for identical input."""
    sink = io.BytesIO()
    # Chunk layout leaks into page boundaries: combine first so equal rows give equal bytes.
    table = table.combine_chunks()
    # write_statistics and a fixed created_by keep the footer stable; no timestamps are written.
    pq.write_table(
        table,
        sink,
        row_group_size=row_group_size,
        compression=compression,
        use_dictionary=True,
        write_statistics=True,
    )
    return sink.getvalue()


def write_parquet_atomic(path: str, table: pa.Table, **kwargs) -> dict:
    """Writes one Parquet file via temp+rename; returns {path, rows, bytes, sha256}."""
    data = table_to_parquet_bytes(table, **kwargs)
    write_bytes_atomic(path, data)
    return {
        "path": path,
        "rows": table.num_rows,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def read_parquet_table(path: str, columns: list[str] | None = None, *, present_only: bool = False) -> pa.Table:
    """The file's `columns` (all when None); with `present_only`, those of them the file has."""
    if not is_remote(path):
        reader = pq.ParquetFile(path)
    else:
        with open_read(path) as handle:
            reader = pq.ParquetFile(pa.BufferReader(handle.read()))
    if present_only and columns is not None:
        columns = [c for c in columns if c in reader.schema_arrow.names]
    return reader.read(columns=columns)


# ----------------------------------------------------------------------------------------------
# Completion markers: a dataset folder is complete only when the run that writes it finished.
# ----------------------------------------------------------------------------------------------

#: Written into a dataset folder before its first file, removed when the stage finished writing it.
INCOMPLETE = "_INCOMPLETE"
#: Written last into a finished dataset folder: the stage and the rows of every Parquet file in it.
SUCCESS = "_SUCCESS"


def begin_output(folder: str, stage: str) -> None:
    """Marks `folder` as being written by `stage` (consumers refuse it until `finish_output`)."""
    remove(join(folder, SUCCESS))
    write_json(join(folder, INCOMPLETE), {"stage": stage})


def finish_output(folder: str, stage: str) -> dict:
    """Writes ``_SUCCESS`` (the stage and the rows of each Parquet file directly in `folder`), then
    removes ``_INCOMPLETE``. Call it after the last file of the folder is written; returns the record."""
    rows = {}
    for path in list_parquet(folder):
        with open_read(path) as handle:
            rows[posixpath.basename(path.replace(os.sep, "/"))] = pq.ParquetFile(handle).metadata.num_rows
    record = {"stage": stage, "files": rows, "rows": sum(rows.values())}
    write_json(join(folder, SUCCESS), record)
    remove(join(folder, INCOMPLETE))
    return record


def publish(staging: str, final: str) -> None:
    """Moves the folder `staging` to `final` (replacing it): one rename on a local disk; on an object
    store, where a rename is a copy per object, a completion marker written after it is what counts."""
    remove(final)
    if not is_remote(staging):
        if os.path.isdir(staging):
            os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
            os.replace(staging, final)
        return
    base = staging.rstrip("/") + "/"
    found = [m.path for m in _filesystems().match([base + "**"])[0].metadata_list]
    if found:
        _filesystems().rename(found, [final.rstrip("/") + "/" + p[len(base) :] for p in found])


def list_parquet(folder: str) -> list[str]:
    """The Parquet files directly in `folder`, sorted (none when it does not exist). No marker check."""
    if is_remote(folder):
        from apache_beam.io.filesystem import BeamIOError

        try:
            found = _filesystems().match([join(folder, "*.parquet")])[0].metadata_list
        except BeamIOError:
            return []
        return sorted(m.path for m in found)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".parquet"))


def _remote_below(folder: str) -> list[str]:
    """Paths below a remote `folder` relative to it ([] when it does not exist)."""
    from apache_beam.io.filesystem import BeamIOError

    base = folder.rstrip("/") + "/"
    try:
        return [m.path[len(base) :] for m in _filesystems().match([base + "**"])[0].metadata_list]
    except BeamIOError:
        return []


def list_files(folder: str) -> list[str]:
    """Every file directly in `folder`, sorted (none when it does not exist)."""
    if is_remote(folder):
        return sorted(join(folder, rel) for rel in _remote_below(folder) if "/" not in rel)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))


def list_dirs(folder: str) -> list[str]:
    """The folders directly in `folder` (hidden ones excluded), sorted."""
    if is_remote(folder):
        names = {rel.split("/", 1)[0] for rel in _remote_below(folder) if "/" in rel}
    else:
        names = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        names = {n for n in names if os.path.isdir(os.path.join(folder, n))}
    return sorted(join(folder, n) for n in names if not n.startswith("."))


def check_complete(folder: str) -> None:
    """ConfigError (one line) when `folder` holds ``_INCOMPLETE``: the stage writing it has not
    finished, or was killed or failed; its files must not be read as a whole dataset."""
    marker = join(folder, INCOMPLETE)
    if not exists(marker):
        return
    try:
        stage = json.loads(read_bytes(marker)).get("stage", "the stage")
    except (ValueError, OSError):
        stage = "the stage"
    raise ConfigError(
        f"{folder} is incomplete: twhin-data {stage.replace('_', ' ')} is still writing it, or was "
        f"killed or failed before it finished ({INCOMPLETE} is present); rerun that stage"
    )
