"""What Dataflow would receive: job.json, pipeline.pb and staged files, checked for problems and secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

MAX_SPEC_BYTES = 10 * 1024 * 1024  # Dataflow rejects job requests/graphs above ~10 MB
_B64_RUN = re.compile(rb"[A-Za-z0-9+/]{48,}={0,2}")


def expected_package_files(package_root: str) -> list[str]:
    """Every file of the twhin_data package in a checkout (modules and data), as sdist-relative paths."""
    root = Path(package_root)
    found = []
    for path in (root / "twhin_data").rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts and not path.name.startswith("."):
            if path.suffix not in (".pyc", ".pyo"):
                found.append(rel.as_posix())
    return sorted(found)


def archive_members(path: str) -> dict[str, bytes]:
    """Files of a staged .tar.gz/.whl/.zip by their path below the archive's top folder."""
    import tarfile
    import zipfile

    out: dict[str, bytes] = {}
    if path.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    out[member.name.split("/", 1)[-1]] = handle.read()
    elif path.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as archive:
            out = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    return out


def _decoded_payloads(data: bytes) -> Iterator[bytes]:
    """Payloads hidden in base64 + bz2/zlib (how Beam pickles DoFns into pipeline.pb and options)."""
    import base64
    import bz2
    import zlib

    for match in _B64_RUN.finditer(data):
        text = match.group(0)
        for offset in range(4):  # a proto length prefix may itself be a base64 character
            chunk = text[offset:]
            try:
                raw = base64.b64decode(chunk[: len(chunk) // 4 * 4])
            except ValueError:
                continue
            for make in (bz2.BZ2Decompressor, zlib.decompressobj):
                try:
                    yield make().decompress(raw)
                except (OSError, EOFError, ValueError, zlib.error):
                    continue


def find_canaries(data: bytes, canaries: list[bytes], depth: int = 0) -> list[bytes]:
    """Canary values present in `data`, in plain bytes or inside compressed base64 payloads."""
    found = [c for c in canaries if c in data]
    if depth < 2 and len(found) < len(canaries):
        for inner in _decoded_payloads(data):
            found += [c for c in find_canaries(inner, canaries, depth + 1) if c not in found]
    return found


def _check_job(job: dict, *, image: str, app: dict[str, str]) -> list[str]:
    problems = []
    env = job.get("environment", {})
    pools = env.get("workerPools") or [{}]
    images = sorted({p.get("workerHarnessContainerImage") for p in pools})
    if images != [image]:
        problems.append(f"worker image is {images}, expected {image}")
    if "use_runner_v2" not in env.get("experiments", []):
        problems.append("experiments lack use_runner_v2")
    packages = [pkg.get("name") for p in pools for pkg in p.get("packages", [])]
    if "workflow.tar.gz" not in packages:
        problems.append(f"workflow.tar.gz is not among the staged packages {packages}")
    options = env.get("sdkPipelineOptions", {}).get("options", {})
    wrong = [k for k, v in app.items() if str(options.get(k)) != v]
    if wrong:
        problems.append("project options missing from sdkPipelineOptions: " + ", ".join(wrong))
    if options.get("save_main_session"):
        problems.append("save_main_session is on")
    return problems


def _check_proto(path: Path, *, image: str, labels: list[str]) -> list[str]:
    from apache_beam.portability.api import beam_runner_api_pb2 as pb2

    proto = pb2.Pipeline()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any decode error is the finding
        return [f"pipeline.pb does not parse: {exc}"]
    names = {t.unique_name for t in proto.components.transforms.values()}
    problems = [f"pipeline.pb lacks transform {label!r}" for label in labels if label not in names]
    images = {
        pb2.DockerPayload.FromString(e.payload).container_image
        for e in proto.components.environments.values()
        if e.urn == "beam:env:docker:v1"
    }
    if images != {image}:
        problems.append(f"pipeline.pb environments use {sorted(images)}, expected {image}")
    return problems


def inspect_spec(
    workdir: str,
    *,
    image: str,
    package_root: str,
    labels: list[str],
    app: dict[str, str],
    canaries: list[str],
) -> list[str]:
    """Checks job.json, pipeline.pb, the staged sdist and every staged byte; returns the problems."""
    import json

    root = Path(workdir)
    job_path, staging = root / "job.json", root / "staging"
    if not job_path.is_file():
        return [f"no job spec was written at {job_path}"]
    problems = []
    for path in (job_path, staging / "pipeline.pb"):
        if path.is_file() and path.stat().st_size >= MAX_SPEC_BYTES:
            problems.append(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB (Dataflow limit ~10 MB)")
    problems += _check_job(json.loads(job_path.read_text(encoding="utf-8")), image=image, app=app)
    if not (staging / "pipeline.pb").is_file():
        problems.append("pipeline.pb was not staged")
    else:
        problems += _check_proto(staging / "pipeline.pb", image=image, labels=labels)
    sdist = staging / "workflow.tar.gz"
    members = archive_members(str(sdist)) if sdist.is_file() else {}
    missing = sorted(set(expected_package_files(package_root)) - set(members))
    if missing:
        problems.append(f"staged sdist lacks {len(missing)} package file(s): {', '.join(missing[:8])}")
    secret = [c.encode() for c in canaries]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "bearer_token.txt"):
        blobs = [path.read_bytes(), *archive_members(str(path)).values()]
        if any(find_canaries(blob, secret) for blob in blobs):
            problems.append(f"a secret value appears in {path.relative_to(root)}")
    return problems
