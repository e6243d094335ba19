"""Recipes, suites, metric modules and the rater page ship inside the package, once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmops import resources
from llmops.cli.main import main as cli
from llmops.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", resources.KINDS)
def test_top_level_folders_are_links_to_the_packaged_files(kind):
    top = REPO / kind
    assert top.is_symlink(), f"{kind}/ must link into llmops/resources (one copy of every file)"
    assert top.resolve() == (REPO / "llmops" / "resources" / kind).resolve() == resources.path(kind).resolve()


def test_relative_recipe_and_suite_paths_fall_back_to_the_shipped_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # outside the checkout
    assert resources.shipped_fallback("recipes/sft_lora.yaml") == resources.path("recipes/sft_lora.yaml")
    assert cli(["validate", "recipes/sft_lora.yaml"]) == 0
    assert "recipe: sft" in capsys.readouterr().out
    from llmops.eval.suites import load_suite

    suite, base = load_suite("eval/docstring_summary.yaml")
    assert base == resources.path("eval")
    # A file of the user's own with that name wins over the shipped one.
    own = tmp_path / "recipes" / "sft_lora.yaml"
    own.parent.mkdir()
    own.write_text("recipe: sft\nmodel: {base: builtin:tiny}\ndata: {train: builtin:docstrings}\n")
    assert resources.shipped_fallback("recipes/sft_lora.yaml") == Path("recipes/sft_lora.yaml")
    # Anything else is left alone for the caller's own "not found" error.
    assert resources.shipped_fallback("recipes/nope.yaml") == Path("recipes/nope.yaml")
    assert resources.shipped_fallback("mine/x.yaml") == Path("mine/x.yaml")


def test_missing_resource_is_a_clear_error():
    with pytest.raises(ConfigError, match="no shipped resource `recipes/nope.yaml`"):
        resources.path("recipes/nope.yaml")


def test_resources_copy_gives_editable_copies_and_never_overwrites(tmp_path, capsys):
    assert cli(["resources", "copy", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "recipes" / "sft_lora.yaml").read_text() == resources.path("recipes/sft_lora.yaml").read_text()
    assert (tmp_path / "mine" / "eval" / "metrics" / "rouge" / "rouge.py").exists()
    assert cli(["resources", "copy", str(tmp_path / "mine")]) == 2
    assert "not overwriting" in capsys.readouterr().err


def test_the_rater_page_is_served_from_the_package():
    from llmops.feedback.api.app import STATIC_DIR

    assert STATIC_DIR == resources.path("feedback") and (STATIC_DIR / "index.html").exists()
    assert os.path.commonpath([STATIC_DIR, Path(resources.__file__).parent]) == str(Path(resources.__file__).parent)
