"""Packaging: every module imports, and every folder with .py files is a real package."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import twhin_data

ROOT = Path(twhin_data.__file__).parent


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(twhin_data.__path__, "twhin_data.")]
    assert len(names) > 15
    failures = {}
    for name in names:
        if name.endswith("__main__"):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # report all failures at once
            failures[name] = repr(exc)
    assert failures == {}


def test_every_source_folder_has_init():
    # walk_packages/find_packages silently skip a folder without __init__.py, and Dataflow workers
    # would then miss its modules although they import locally as a namespace package.
    missing = [
        str(folder.relative_to(ROOT))
        for folder in [ROOT, *[p for p in ROOT.rglob("*") if p.is_dir()]]
        if "__pycache__" not in folder.parts and any(folder.glob("*.py")) and not (folder / "__init__.py").exists()
    ]
    assert missing == []


def test_cli_commands_point_at_modules():
    from twhin_data.runners.commands import COMMANDS

    for command, entry in COMMANDS.items():
        module_name, kind, help_line = entry.module, entry.kind, entry.help
        module = importlib.import_module(module_name)
        assert isinstance(help_line, str) and help_line, command
        assert callable(module.add_arguments), command
        if kind == "pipeline":
            for attr in ("NAME", "validate", "plan", "prepare_output", "build", "finish"):
                assert hasattr(module, attr), f"{command}: {attr}"
        else:
            assert callable(module.main), command
