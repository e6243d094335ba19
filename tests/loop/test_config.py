"""The shipped loop config and gates load; mistakes are named with their key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_shipped_loop_config_resolves_paths_relative_to_itself():
    from llmops.loop.retrain_config import load_loop_config
    from llmops.monitor.rules import load_rules
    from llmops.registry.gates import load_gates

    cfg = load_loop_config(REPO / "recipes" / "loop" / "default.yaml")
    assert Path(cfg.retrain.recipe).resolve() == (REPO / "recipes" / "dpo.yaml").resolve()
    assert Path(cfg.evaluate.suite).is_file() and Path(cfg.alerts).is_file()
    assert cfg.cooldown.total_seconds() == 6 * 3600 and cfg.interval.total_seconds() == 300
    rules = load_rules(cfg.alerts)
    assert {r.name for r in rules.rules} == {"production-rating-drop", "prompt-drift"}
    assert all(a.type == "log" for r in rules.rules for a in r.actions)  # the loop retrains, not the rules
    gates = load_gates(cfg.promote.gates)
    assert [r.type for r in gates.aliases["production"].rules] == ["requires_alias", "metric_threshold", "no_regression", "no_regression"]


@pytest.mark.parametrize(("patch", "message"), [
    ({"retrain": {"recipe": "x.yaml", "min_pair": 3}}, "retrain.min_pair"),
    ({"cooldown": "soon"}, "cooldown"),
])
def test_bad_config_names_the_key(tmp_path, patch, message):
    import yaml

    from llmops.loop.retrain_config import load_loop_config

    raw = yaml.safe_load((REPO / "recipes" / "loop" / "default.yaml").read_text())
    raw.update(patch)
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_loop_config(path)


def test_retrain_rules_must_exist(tmp_path):
    import yaml

    from llmops.errors import UserError
    from llmops.loop.retrain import RetrainLoop
    from llmops.loop.retrain_config import load_loop_config

    raw = yaml.safe_load((REPO / "recipes" / "loop" / "default.yaml").read_text())
    raw["retrain"]["rules"] = ["no-such-rule"]
    raw["alerts"] = str(REPO / "recipes" / "loop" / "alerts.yaml")
    raw["state_dir"] = str(tmp_path / "state")
    raw["retrain"]["recipe"] = str(REPO / "recipes" / "dpo.yaml")
    raw["evaluate"]["suite"] = str(REPO / "eval" / "docstring_summary.yaml")
    raw["promote"]["gates"] = str(REPO / "recipes" / "loop" / "gates.yaml")
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="no-such-rule"):
        RetrainLoop(load_loop_config(path), f"sqlite:///{tmp_path / 'x.db'}")


def test_paths_resolve_through_the_checkout_links_and_never_into_the_package(tmp_path, monkeypatch):
    """recipes/ is a link into llmops/resources: ../../runs must stay in the checkout, and the
    shipped config used outside a checkout keeps its state in ./runs/loop."""
    from pathlib import Path

    from llmops import resources
    from llmops.loop.retrain_config import load_loop_config

    repo = Path(__file__).resolve().parents[2]
    cfg = load_loop_config(repo / "recipes" / "loop" / "default.yaml")
    assert cfg.state_dir == str(repo / "runs" / "loop")
    assert cfg.retrain.recipe == str(repo / "recipes" / "dpo.yaml")
    monkeypatch.chdir(tmp_path)
    shipped = load_loop_config("recipes/loop/default.yaml")  # no such file here: the package's copy
    assert shipped.state_dir == str(tmp_path / "runs" / "loop")
    assert shipped.retrain.recipe == str(resources.path("recipes/dpo.yaml"))
    assert not shipped.state_dir.startswith(str(resources.root()))
