"""The quickstart ends with the commands that open `llmops ui` on its results; they parse as real commands."""

from __future__ import annotations

import shlex

from llmops.cli.main import build_parser
from llmops.loop.quickstart import Quickstart
from llmops.loop.settings import FAST


def test_ui_commands_point_at_the_quickstart_outputs(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMOPS_REGISTRY_ROOT", raising=False)
    out = tmp_path / "quick start"  # a space: the commands must quote paths
    qs = Quickstart(out, FAST)
    cmds = qs.ui_commands()
    words = shlex.split(cmds["ui"])
    assert words[0] == f"LLMOPS_REGISTRY_ROOT={out.resolve() / 'registry'}"
    args = build_parser().parse_args(words[2:])
    assert args.command == "ui" and args.db == f"sqlite:///{out.resolve() / 'llmops.db'}"
    assert args.runs_dir == [str(out.resolve() / "runs")] and args.evals_dir == [str(out.resolve() / "eval")]
    key = build_parser().parse_args(shlex.split(cmds["key"])[2:])
    assert (key.role, key.db) == ("admin", args.db)
