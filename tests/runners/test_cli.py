"""The `twhin-data` command line: help for every flag, one-line errors with exit code 2."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from twhin_data.runners import cli, commands
from twhin_data.runners.options import OneLineParser, add_common_arguments


def _parser(command: str) -> OneLineParser:
    module_name, kind = commands.COMMANDS[command].module, commands.COMMANDS[command].kind
    module = importlib.import_module(module_name)
    parser = OneLineParser(prog=f"twhin-data {command}")
    module.add_arguments(parser)
    if kind == "pipeline":
        add_common_arguments(parser)
    return parser


def test_top_level_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in commands.COMMANDS:
        assert command in out
    assert "(not available" not in out


@pytest.mark.parametrize("command", list(commands.COMMANDS))
def test_every_flag_has_help(command):
    parser = _parser(command)
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert flags, command
    for action in flags:
        assert action.help and len(action.help) > 10, f"{command} {action.option_strings} lacks help"
        assert all(not s.startswith("--") or "-" not in s[2:] for s in action.option_strings), (
            f"{command}: flags are snake_case: {action.option_strings}"
        )


@pytest.mark.parametrize("command", list(commands.COMMANDS))
def test_command_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*command.split(), "--help"])
    assert exc.value.code == 0
    assert "--" in capsys.readouterr().out


def _one_line_error(argv: list[str], capsys) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    return err


def _exit_code(argv, capsys):
    try:
        return cli.main(argv), capsys.readouterr().err.strip()
    except SystemExit as exc:
        return exc.code, capsys.readouterr().err.strip()


def test_unknown_command(capsys):
    assert "unknown command" in _one_line_error(["frobnicate"], capsys)


def test_unknown_flag_is_one_line_exit_2(capsys):
    code, err = _exit_code(["run", "--no_such_flag", "1"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "no_such_flag" in err


def test_bad_value_is_one_line_exit_2(capsys):
    code, err = _exit_code(["run", "--workers", "zero"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "workers" in err


def test_pipeline_bad_value_is_one_line_exit_2(capsys):
    code, err = _exit_code(["prepare", "--tweets", "x", "--output", "y", "--workers", "-3"], capsys)
    assert code == 2 and len(err.splitlines()) == 1


def test_missing_config_file_is_one_line_exit_2(capsys, tmp_path):
    code, err = _exit_code(["run", "--config", str(tmp_path / "nope.yaml"), "--output", str(tmp_path)], capsys)
    assert code == 2 and "config file not found" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_console_script_module_entry():
    out = subprocess.run([sys.executable, "-m", "twhin_data", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip()


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["prepare", "--tweets=x", "--output=y", "--langauges=en"], "(did you mean --languages?)"),
        (["shard", "--corpus=x", "--output=y", "--num-shards", "3"], "(did you mean --num_shards?)"),
    ],
)
def test_a_mistyped_flag_gets_a_did_you_mean(argv, hint, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith(hint)


@pytest.mark.parametrize("command", list(commands.COMMANDS))
def test_help_shows_every_default(command):
    import importlib

    from twhin_data.runners import options as opts

    spec = commands.COMMANDS[command]
    parser = opts.command_parser(command, importlib.import_module(spec.module), pipeline=spec.kind == "pipeline")
    formatter = parser._get_formatter()  # noqa: SLF001 - the formatter --help uses
    for action in parser._actions:  # noqa: SLF001
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert "default" in formatter._get_help_string(action).lower(), (command, action.option_strings)  # noqa: SLF001
