"""The docstring corpus must not depend on what the calling process imported or patched."""

from __future__ import annotations

import importlib


def test_corpus_ignores_the_calling_process_state(tmp_path, monkeypatch):
    from llmops.data import corpus

    modname = corpus.PRETRAIN_MODULES[0]
    module = importlib.import_module(modname)

    def zz_injected():
        """An injected function whose docstring must never reach the corpus."""

    zz_injected.__module__ = modname
    monkeypatch.setattr(module, "zz_injected", zz_injected, raising=False)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path))
    corpus._clean_corpus.cache_clear()
    try:
        in_process = {d.text for d in corpus.iter_docstrings([modname])}
        clean = corpus.pretrain_docstrings()
    finally:
        corpus._clean_corpus.cache_clear()
    assert zz_injected.__doc__ in in_process  # the hazard is real in-process
    assert zz_injected.__doc__ not in {d.text for d in clean}
    assert any(d.source.startswith(modname) for d in clean)
    assert list((tmp_path / "corpus").glob("stdlib-docstrings-*.json"))  # cached for the next caller
