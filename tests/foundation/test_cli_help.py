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
