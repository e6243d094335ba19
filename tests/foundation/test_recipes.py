"""Shipped recipes validate; broken recipes and overrides exit 2 naming the key, with no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "recipes").glob("*.yaml"))

GOOD = """\
recipe: sft
model:
  base: builtin:tiny
data:
  train: builtin:docstrings
train:
  max_steps: 5
  lr: 0.001
output:
  dir: runs/x
"""


def test_there_are_shipped_recipes():
    assert SHIPPED, "recipes/*.yaml: no shipped recipes"


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipe_validates(recipe, capsys):
    assert main(["validate", str(recipe)]) == 0, capsys.readouterr().err
    assert "recipe hash" in capsys.readouterr().out


def test_good_recipe_and_overrides_resolve(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD)
    assert main(["validate", str(path), "train.max_steps=7", "train.mixed_precision=bf16", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"max_steps": 7' in out and '"mixed_precision": "bf16"' in out


# (case id, recipe text, overrides, substrings the one-line error must contain)
BROKEN = [
    ("unknown-key", GOOD.replace("  lr: 0.001", "  lrate: 0.001"), [], ["train.lrate", "did you mean `train.lr`"]),
    ("unknown-section", GOOD + "trian:\n  seed: 1\n", [], ["trian", "did you mean `train`"]),
    ("negative-lr", GOOD.replace("lr: 0.001", "lr: -1"), [], ["train.lr", "must be > 0", "-1"]),
    ("negative-lr-override", GOOD, ["train.lr=-1"], ["train.lr", "must be > 0", "(override)"]),
    ("bad-mixed-precision", GOOD, ["train.mixed_precision=fp8"], ["train.mixed_precision", "fp8"]),
    ("wrong-type", GOOD.replace("max_steps: 5", "max_steps: five"), [], ["train.max_steps", "integer", "five"]),
    ("bad-yaml", GOOD.replace("  lr: 0.001", "  lr: [0.001"), [], ["invalid YAML", "r.yaml:"]),
    ("duplicate-key", GOOD.replace("  lr: 0.001", "  lr: 0.001\n  lr: 0.002"), [], ["duplicate key `lr`", "r.yaml:9"]),
    ("missing-data-train", GOOD.replace("  train: builtin:docstrings\n", "  max_length: 64\n"), [], ["data.train", "required"]),
    ("section-not-matching", GOOD + "dpo:\n  beta: 0.1\n", [], ["dpo", "only valid with recipe: dpo"]),
    ("bad-recipe-kind", GOOD.replace("recipe: sft", "recipe: ppo"), [], ["recipe", "ppo"]),
    ("override-unknown-key", GOOD, ["train.max_stpes=3"], ["train.max_stpes", "did you mean `train.max_steps`"]),
    ("override-not-kv", GOOD, ["train.max_steps"], ["KEY=VALUE"]),
]


@pytest.mark.parametrize("text,overrides,expected", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_recipe_exits_2_with_key_path(tmp_path, capsys, text, overrides, expected):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    assert main(["validate", str(path), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in {err!r}"


def test_missing_recipe_file_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
