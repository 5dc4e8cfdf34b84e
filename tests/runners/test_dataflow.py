"""Dataflow profile and the offline job-spec check (no network, no credentials, nothing submitted)."""

from __future__ import annotations

import argparse
import base64
import bz2
import json
import os
import types
from pathlib import Path

import apache_beam as beam
import pytest

from twhin_data.core.errors import ConfigError
from twhin_data.pipelines.plan import Plan
from twhin_data.runners import cli, commands, launch, local
from twhin_data.runners.dataflow import check as dataflow_check
from twhin_data.runners.dataflow import flex
from twhin_data.runners.dataflow import inspect as dataflow_inspect
from twhin_data.runners.dataflow import profile as dataflow

try:
    import google.auth  # noqa: F401 - DataflowRunner's client needs the gcp extra
except ImportError:
    HAS_GCP = False
else:
    HAS_GCP = True
#: Building a job spec needs DataflowRunner's client libraries (apache-beam[gcp]).
needs_gcp = pytest.mark.skipif(
    not HAS_GCP, reason="DataflowRunner needs the gcp extra: pip install -e '.[gcp]'"
)

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BASE = ["--runner=DataflowRunner", "--project=p", "--region=us-central1", "--temp_location=gs://b/tmp"]


@pytest.fixture
def profile(monkeypatch):
    """The profile's flag logic runs without the gcp extra (its own check is tested on its own)."""
    monkeypatch.setattr(dataflow, "require_gcp_extra", lambda: None)


def _args(**values) -> argparse.Namespace:
    return argparse.Namespace(**{"output": "gs://b/out", "workers": 1, "overwrite": False, **values})


# ---- complete_flags: the profile ---------------------------------------------------------------


def test_complete_flags_ships_the_checkout_and_appends_app_flags(profile):
    flags = dataflow.complete_flags(BASE, _args(min_chars=3, languages=["en", "ja"], log_level="INFO"))
    assert f"--setup_file={REPO / 'setup.py'}" in flags
    assert "--machine_type=n2-standard-4" in flags and "--labels=app=twhin-data" in flags
    assert {"--output=gs://b/out", "--min_chars=3", "--languages=en,ja", "--overwrite=False"} <= set(flags)
    assert not any(f.startswith("--save_main_session") for f in flags)
    assert not any(f.startswith("--workers") for f in flags)  # a local-profile switch, not a job option


def test_complete_flags_with_container_uses_it_and_keeps_user_choices(profile):
    flags = dataflow.complete_flags(
        [*BASE, "--sdk_container_image=r/i:1", "--machine_type=n2-highmem-8"], _args()
    )
    assert "--sdk_location=container" in flags
    assert not any(f.startswith("--setup_file") for f in flags)
    assert [f for f in flags if f.startswith("--machine_type")] == ["--machine_type=n2-highmem-8"]


def test_complete_flags_outside_a_checkout_requires_a_container(profile, monkeypatch):
    monkeypatch.setattr(dataflow, "repo_setup_file", lambda: None)
    with pytest.raises(ConfigError, match="--sdk_container_image"):
        dataflow.complete_flags(BASE, _args())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (BASE[:2], "--region, --temp_location"),
        ([*BASE, "--save_main_session"], "save_main_session"),
        ([*BASE[:3], "--temp_location=/tmp/t"], "--temp_location must be a gs:// path"),
    ],
)
def test_complete_flags_rejects_what_dataflow_would_fail_on(profile, flags, message):
    with pytest.raises(ConfigError, match=message):
        dataflow.complete_flags(flags, _args())


def test_local_output_is_rejected_on_the_real_service(profile):
    with pytest.raises(ConfigError, match="--output must be a gs:// path"):
        dataflow.complete_flags(BASE, _args(output="./out"))


def test_app_options_never_carry_a_secret(monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "tok-123456")
    app = dataflow.app_options(
        _args(
            bearer_token="tok-x",
            api_secret="s",
            tokenizer="bundled",  # a name, not a token
            max_tokens=5,
            bearer_token_file="/run/token",
            bearer_token_secret="projects/p/secrets/x",
            region="eu",  # collides with Beam's --region
            inputs=["f"] * 600,  # expanded file lists are too long to be a job option
            plan=object(),
        )
    )
    assert "bearer_token" not in app and "api_secret" not in app
    assert app["tokenizer"] == "bundled" and app["max_tokens"] == "5"
    assert app["bearer_token_file"] == "/run/token" and app["bearer_token_secret"] == "projects/p/secrets/x"
    assert app["twhin_region"] == "eu" and "inputs" not in app and "plan" not in app
    with pytest.raises(ConfigError, match="--note holds the X bearer token"):
        dataflow.app_options(_args(note="see tok-123456"))


# ---- --workers on Dataflow ---------------------------------------------------------------------


def test_workers_above_one_are_rejected_on_dataflow():
    with pytest.raises(ConfigError, match="--workers applies to local runs only"):
        launch.resolve_workers(_args(workers=4), BASE)
    assert launch.resolve_workers(_args(workers=None), BASE) == 1
    assert launch.resolve_workers(_args(workers=3), ["--runner=FnApiRunner"]) == 3


def test_cli_says_why_workers_is_refused_in_one_line(capsys, tmp_path):
    code = cli.main(["prepare", "--tweets", str(tmp_path), "--output", "gs://b/o", "--workers", "2", *BASE])
    err = capsys.readouterr().err
    assert code == 2 and "--workers applies to local runs only" in err and len(err.strip().splitlines()) == 1


def test_cli_fails_fast_on_missing_dataflow_flags_before_touching_gcs(profile, capsys, tmp_path):
    # gs://b/o is unreachable here: reaching validate() would hang on retries, then print a traceback.
    code = cli.main(["prepare", "--tweets", str(tmp_path), "--output", "gs://b/o", "--runner=DataflowRunner"])
    err = capsys.readouterr().err
    assert code == 2 and "DataflowRunner needs --project, --region, --temp_location" in err
    assert len(err.strip().splitlines()) == 1


# ---- the secret detector -----------------------------------------------------------------------


def test_find_canaries_sees_through_beams_pickle_encoding():
    payload = base64.b64encode(bz2.compress(b"...state canary-abc..."))
    blob = b"\x0a\x52" + payload + b"\x12R"  # proto framing around it, as in pipeline.pb
    assert dataflow_inspect.find_canaries(blob, [b"canary-abc", b"canary-zzz"]) == [b"canary-abc"]
    assert dataflow_inspect.find_canaries(base64.b64encode(bz2.compress(b"clean")), [b"canary-abc"]) == []


class _LeakyFn(beam.DoFn):
    """The mistake the check exists for: a token read at construction travels in the pickled DoFn."""

    def __init__(self):
        self._token = os.environ.get("X_BEARER_TOKEN")

    def process(self, element):
        yield element


def _fake_module(build) -> types.ModuleType:
    module = types.ModuleType("fake_pipeline")
    module.NAME = "fake"
    module.HELP = "a fake pipeline"
    module.add_arguments = lambda parser: None
    module.validate = lambda args: None
    module.plan = lambda args, run: Plan(args=args, run=run)
    module.prepare_output = lambda plan: None
    module.build = build
    return module


def _leaky_build(p, plan):
    p | "Ids" >> beam.Create(["1"]) | "Lookup" >> beam.ParDo(_LeakyFn())


def _clean_build(p, plan):
    p | "Ids" >> beam.Create(["1"]) | "Lookup" >> beam.Map(str)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> str:
    """The sdist, built once offline as Beam builds it for --setup_file, reused by every spec."""
    return dataflow_check.build_sdist(str(REPO / "setup.py"), str(tmp_path_factory.mktemp("sdist")))


def _spec(module, tmp_path: Path, sdist: str, argv: list[str]) -> list[str]:
    with dataflow_check.canary_secrets(str(tmp_path)) as (canaries, _), dataflow_check.reuse_sdist(sdist):
        return _check(module, argv, tmp_path, canaries)


@needs_gcp
def test_check_catches_a_token_pickled_into_a_dofn(tmp_path, sdist):
    problems = _spec(_fake_module(_leaky_build), tmp_path, sdist, [f"--output={tmp_path / 'out'}"])
    assert any("secret value appears in staging/pipeline.pb" in p for p in problems), problems


def test_the_wheel_workers_install_from_the_sdist_holds_every_package_file(tmp_path, sdist):
    assert dataflow_check.check_installable(sdist, str(REPO), str(tmp_path / "ok")) == []
    root = tmp_path / "pkg"
    (root / "twhin_data" / "data").mkdir(parents=True)
    (root / "twhin_data" / "data" / "model.bin").write_bytes(b"x")  # a type package_data does not list
    problems = dataflow_check.check_installable(sdist, str(root), str(tmp_path / "bad"))
    assert problems and "twhin_data/data/model.bin" in problems[0]


@needs_gcp
def test_check_catches_a_module_missing_from_the_sdist(tmp_path, sdist):
    problems = _spec(_fake_module(_clean_build), tmp_path, sdist, [f"--output={tmp_path / 'out'}"])
    assert problems == []
    root = tmp_path / "pkg"
    (root / "twhin_data" / "orphan").mkdir(parents=True)
    (root / "twhin_data" / "orphan" / "mod.py").write_text("X = 1\n")  # no __init__.py: not packaged
    found = dataflow_inspect.inspect_spec(
        str(tmp_path / "spec"),
        image="other:1",
        package_root=str(root),
        labels=["Ids", "Nope"],
        app={"a": "1"},
        canaries=[],
    )
    text = "; ".join(found)
    for expected in (
        "twhin_data/orphan/mod.py",
        "worker image",
        "lacks transform 'Nope'",
        "sdkPipelineOptions: a",
    ):
        assert expected in text, text


# ---- every real pipeline: the CI check ---------------------------------------------------------


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory) -> str:
    """The bundled sample chain (hydrate, prepare, graph) run once locally: inputs for the specs."""
    # One sample chain per pytest session: test_multiprocess.py reuses the same directory.
    return local.sample_inputs(str(tmp_path_factory.getbasetemp() / "twhin-sample"), list(commands.PIPELINES))


def _check(module, argv: list[str], tmp_path, canaries: list[str]) -> list[str]:
    """The CI check of one pipeline's job spec, built under tmp_path/spec with the check image."""
    return dataflow_check.check_pipeline(
        module,
        argv,
        workdir=str(tmp_path / "spec"),
        image=dataflow_check.CHECK_IMAGE,
        setup_file=str(REPO / "setup.py"),
        canaries=canaries,
    )


@needs_gcp
@pytest.mark.parametrize("command", commands.PIPELINES)
def test_real_pipeline_job_spec_passes_every_check(command, tmp_path, sdist, sample_out):
    module, why = commands.load_pipeline(command)
    if module is None:
        pytest.skip(why)
    argv = local.sample_argv(command, sample_out, str(tmp_path / "out"))
    with (
        dataflow_check.canary_secrets(str(tmp_path)) as (canaries, token_file),
        dataflow_check.reuse_sdist(sdist),
    ):
        if "--bearer_token_file" in dataflow_check.option_strings(module):
            argv.append(f"--bearer_token_file={token_file}")
        problems = _check(module, argv, tmp_path, canaries)
    assert problems == []
    job = json.loads((tmp_path / "spec" / "job.json").read_text())
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["output"] == str(tmp_path / "out") and options["sdk_location"] == "container"


@needs_gcp
def test_distributed_knn_graph_job_spec_passes_every_check(tmp_path, sdist, sample_out):
    """graph --knn distributed: its pooled steps, side inputs and spill folder translate for Dataflow."""
    module, _ = commands.load_pipeline("graph")
    embeddings = local.run.sample_path("sample_tweet_embeddings.parquet")
    argv = local.sample_argv("graph", sample_out, str(tmp_path / "out"))
    argv += ["--pairs=cooccurrence,embeddings", f"--embeddings={embeddings}", "--knn=distributed"]
    with dataflow_check.canary_secrets(str(tmp_path)) as (canaries, _), dataflow_check.reuse_sdist(sdist):
        problems = _check(module, argv, tmp_path, canaries)
    assert problems == []
    pipeline = (tmp_path / "spec" / "staging" / "pipeline.pb").read_bytes()
    assert b"DistributedKnn/SearchLists" in pipeline and b"DistributedKnn/TopK" in pipeline


@needs_gcp
def test_dataflow_check_command_prints_a_verdict_per_pipeline(capsys, tmp_path, sample_out):
    code = cli.main(
        ["dataflow-check", "--pipelines", "prepare", "--inputs", sample_out, "--workdir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        out.splitlines()[0].startswith("sdist  OK")
        and out.splitlines()[1].startswith("prepare")
        and " OK " in out
    )
    assert cli.main(["dataflow-check", "--pipelines", "nosuch"]) == 2


# ---- deploy/: worker image, Flex Template ------------------------------------------------------

DEPLOY = REPO / "deploy"


def test_worker_dockerfile_pins_the_sdk_image_of_our_beam_version():
    text = (DEPLOY / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == [dataflow.BASE_IMAGE] == [f"apache/beam_python3.11_sdk:{beam.__version__}"]
    assert "COPY twhin_data ./twhin_data" in text and 'pip install --no-cache-dir ".[gcp]"' in text
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text


def test_flex_template_files_are_consistent_with_the_cli():
    launcher = [line for line in (DEPLOY / "flex" / "main.py").read_text().splitlines() if line.strip()]
    assert len(launcher) == 2 and "flex_main" in launcher[0]
    compile("\n".join(launcher), "main.py", "exec")
    docker = (DEPLOY / "flex" / "Dockerfile").read_text()
    assert (
        "ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/main.py" in docker
        and "python_template_launcher" in docker
    )
    meta = json.loads((DEPLOY / "flex" / "metadata.json").read_text())
    assert meta["name"] and meta["description"] and meta["streaming"] is False
    known = set()
    for command in commands.PIPELINES:
        known |= {s.lstrip("-") for s in dataflow_check.option_strings(commands.load_pipeline(command)[0])}
    names = [p["name"] for p in meta["parameters"]]
    assert len(names) == len(set(names)) and {"command", "output"} <= set(names)
    for param in meta["parameters"]:
        assert param["helpText"] and param["label"] and isinstance(param["isOptional"], bool)
        flag = flex.FLEX_RENAMES.get(param["name"], param["name"])
        assert flag in known | {"command", "output"}, f"template parameter {flag!r} is no command's flag"
        assert not dataflow.is_secret(flag, "projects/p/secrets/s"), (
            f"template parameter {flag!r} would carry a secret"
        )


def test_flex_to_cli_turns_switches_and_renames_into_command_flags():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strip_rt", action="store_true")
    parser.add_argument("--pack", dest="pack", action="store_true", default=True)
    parser.add_argument("--no_pack", dest="pack", action="store_false")
    parser.add_argument("--labels")
    argv = ["--strip_rt=true", "--pack=false", "--hashtag_labels=gs://b/l.csv", "--min_chars=3"]
    assert flex.flex_to_cli(argv, parser) == [
        "--strip_rt",
        "--no_pack",
        "--labels=gs://b/l.csv",
        "--min_chars=3",
    ]
    assert flex.flex_to_cli(["--strip_rt=false"], parser) == []


@needs_gcp
def test_flex_main_submits_one_stage_without_waiting(tmp_path, sample_out, capsys):
    assert flex.flex_main(["--command=nosuch"]) == 2
    assert "--command must be one of" in capsys.readouterr().err
    flags = dataflow_check.spec_flags(
        str(tmp_path), setup_file=str(REPO / "setup.py"), image="r/i:1", job_name="flex"
    )
    argv = ["--command=prepare", f"--tweets={sample_out}", f"--output={tmp_path / 'out'}", "--min_chars=4"]
    assert flex.flex_main(argv + [f for f in flags if not f.startswith("--runner")]) == 0
    options = json.loads((tmp_path / "job.json").read_text())["environment"]["sdkPipelineOptions"]["options"]
    assert options["min_chars"] == "4" and options["runner"] == "DataflowRunner"


def test_missing_gcp_extra_is_a_one_line_config_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "google.auth" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs the gcp extra: pip install 'twhin-data\[gcp\]'"):
        dataflow.complete_flags(BASE, _args())


@needs_gcp
@pytest.mark.parametrize("command", commands.PIPELINES)
def test_cli_with_template_location_writes_the_spec_and_exits_0(command, tmp_path, sdist, sample_out, capsys):
    """`twhin-data <command> --runner DataflowRunner --template_location FILE`: nothing runs, so
    nothing is finished (no metrics to query, no reports, no completion markers)."""
    argv = local.sample_argv(command, sample_out, str(tmp_path / "out"))
    flags = dataflow_check.spec_flags(
        str(tmp_path / "spec"), setup_file=str(REPO / "setup.py"), image=dataflow_check.CHECK_IMAGE, job_name="t"
    )
    with dataflow_check.reuse_sdist(sdist):
        code = cli.main([*command.split(), *argv, *flags, "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out) == {"job_spec_only": True, "stage": command}
    assert (tmp_path / "spec" / "job.json").is_file()
