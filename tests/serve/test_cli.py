"""`llmops serve` fails fast, with one clear line, before binding a port."""

from __future__ import annotations

from llmops.cli.main import main


def test_unknown_registry_model_is_a_user_error(tmp_path, capsys) -> None:
    rc = main(["serve", "--model", "registry:nope@production", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--migrate"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: registry:nope@production:") and "nope" in err


def test_vllm_backend_without_vllm_names_the_extra(tmp_path, capsys) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        import pytest

        pytest.skip("vLLM is installed here")
    rc = main(["serve", "--model", "builtin:tiny", "--backend", "vllm", "--db", f"sqlite:///{tmp_path / 'x.db'}",
               "--migrate"])
    assert rc == 2
    assert "llmops[vllm]" in capsys.readouterr().err


def test_bad_numbers_are_refused(capsys) -> None:
    assert main(["serve", "--model", "builtin:tiny", "--max-batch-size", "0"]) == 2
    assert "--max-batch-size" in capsys.readouterr().err


def test_a_database_behind_the_code_is_refused_without_migrate(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["serve", "--model", "builtin:tiny", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "schema is behind" in err and "llmops db upgrade" in err
    assert main(["db", "current", "--db", db]) == 1  # read-only: reports, never migrates
    assert "(empty database)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", db]) == 0
    assert main(["db", "current", "--db", db]) == 0 and "up to date" in capsys.readouterr().out
