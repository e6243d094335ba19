"""What a served generation leaves in the feedback store, on SQLite and PostgreSQL (no model needed)."""

from __future__ import annotations

from pathlib import Path

from llmops.eval.backends.base import Prompt
from llmops.serve.generation import Choice, GenRequest, GenResult
from llmops.serve.host import LoadedModel


def _model() -> LoadedModel:
    return LoadedModel(backend=None, served_ref="registry:docs@production", resolved_ref="registry:docs/3",
                       version="docs/3", sha256="ab" * 32, path=Path("/nonexistent"))


def test_chat_request_becomes_one_item_with_a_response_per_choice(db_url: str) -> None:
    from llmops.db import upgrade
    from llmops.feedback.schemas import MAX_RESPONSE_CHARS
    from llmops.feedback.store import FeedbackStore
    from llmops.serve.recording import Recorder

    upgrade(db_url)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Sum 2+2"}]
    req = GenRequest(kind="chat", prompts=[], messages=messages, n=2, max_tokens=None, temperature=0.5,
                     top_p=0.9, stop=("\n",), seed=None)
    req.rendered = [Prompt("<rendered>", add_special_tokens=False)]
    long_text = "y" * (MAX_RESPONSE_CHARS + 5)
    result = GenResult(_model(), [[Choice("4", "stop", 2), Choice(long_text, "length", 9)]], [11], 9, 1234)
    item_ids, response_ids = Recorder(db_url).record(req, result, "chatcmpl-x", "user-7")

    assert len(item_ids) == 1 and len(response_ids) == 2
    item = FeedbackStore(db_url, migrate=False).get_item(item_ids[0])
    assert item.prompt == "Sum 2+2"
    assert item.context == "user: Hi\nassistant: Hello"  # the system prompt stays in metadata only
    assert item.metadata["messages"] == messages and item.metadata["user"] == "user-7"
    assert item.metadata["resolved_ref"] == "registry:docs/3" and item.metadata["request_id"] == "chatcmpl-x"
    first, second = item.responses
    assert [r.id for r in item.responses] == response_ids
    assert (first.text, first.model, first.model_version) == ("4", "registry:docs@production", "docs/3")
    assert first.generation_params == {
        "temperature": 0.5, "top_p": 0.9, "max_tokens": 9, "stop": ["\n"], "n": 2, "seed": 1234,
        "seed_requested": None, "finish_reason": "stop", "completion_tokens": 2}
    # longer than the store keeps: stored cut, and marked so
    assert len(second.text) == MAX_RESPONSE_CHARS and second.generation_params["stored_truncated"] is True
