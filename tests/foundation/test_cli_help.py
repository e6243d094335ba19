"""`llmops --help` and every (sub)command's --help exit 0 and say something."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from llmops.cli.main import build_parser, main


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths.extend(_command_paths(sub, prefix + (name,)))
    return paths


COMMANDS = _command_paths(build_parser())


def test_top_level_help_is_fast_and_lists_commands():
    out = subprocess.run([sys.executable, "-m", "llmops", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for cmd in ("validate", "models", "data"):
        assert cmd in out.stdout


def test_foundation_commands_are_registered():
    assert {("models", "list"), ("models", "path"), ("data", "inspect"), ("validate",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_subcommand_help_exits_0(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: llmops " + " ".join(path))
    assert len(out.splitlines()) >= 3


def test_command_table_matches_what_the_modules_register():
    """main() builds only the invoked command's module (`COMMANDS`): the table must name every
    command each module registers, and only those."""
    import importlib

    from llmops.cli import main as cli_main

    registered = {}
    for module in cli_main.COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        registered.update({name: module for name in sub.choices})
    assert cli_main.COMMANDS == registered
    assert cli_main.invoked_command(["-v", "eval", "run"]) == "eval"
    assert cli_main.invoked_command(["--help"]) is None and cli_main.invoked_command(["nope"]) is None
    only = build_parser("eval")
    assert only.parse_args(["eval", "run", "--model", "m", "--suite", "s", "--out", "o"]).func
