"""OpenAI-compatible request and response bodies (the subset a local model can honour).

Unknown fields are refused (as OpenAI does: "Unrecognized request argument"), and
accepted-but-unsupported ones (``stream``, ``logprobs``, penalties...) are refused
unless they carry their neutral value, so a client never silently gets something other
than what it asked for. Every limit is a named constant.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.feedback.schemas import MAX_PROMPT_CHARS, MAX_RESPONSES_PER_ITEM

MAX_N = MAX_RESPONSES_PER_ITEM  # every choice becomes a response of one feedback item
MAX_PROMPTS = 32  # prompts in one /v1/completions request
MAX_STOP = 4  # as OpenAI
MAX_STOP_CHARS = 200
MAX_MESSAGES = 256
MAX_TOKENS_LIMIT = 1 << 20  # an upper bound for the schema; the model's window is the real one
MAX_CONTENT_CHARS = MAX_PROMPT_CHARS  # one prompt, or all messages of one chat together
MAX_SEED = 2**63 - 1
MAX_LOGPROBS = 5  # completions: top alternatives per token (as OpenAI)
MAX_TOP_LOGPROBS = 20  # chat: top alternatives per token (as OpenAI)


def _storable(text: str) -> str:
    """Refuse text no database can store (the feedback store must keep every prompt)."""
    if "\x00" in text:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (unpaired surrogate)") from exc
    return text


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(None, max_length=500, description="Served model (see GET /v1/models); default: it.")
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT, description="Tokens to generate at most.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 = greedy (deterministic).")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=MAX_N, description="Choices per prompt (one feedback item holds them all).")
    stop: str | list[str] | None = Field(None, description="Up to 4 strings; the text ends before the first one.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Sampling seed: same request and seed, same answer.")
    user: str | None = Field(None, max_length=200, description="End-user id, recorded with the feedback item.")
    stream: bool = Field(False, description="Server-sent events; the tokens arrive when the batch is done.")
    stream_options: StreamOptions | None = Field(None, description="With stream: include_usage adds a usage chunk.")
    presence_penalty: float = Field(0.0, description="Not supported (must be 0).")
    frequency_penalty: float = Field(0.0, description="Not supported (must be 0).")
    logit_bias: dict[str, float] | None = Field(None, description="Not supported (must be empty).")

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        for s in stops:
            if not s or len(s) > MAX_STOP_CHARS:
                raise ValueError(f"stop sequences must have 1..{MAX_STOP_CHARS} characters")
            _storable(s)
        return stops

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else _storable(value)

    @model_validator(mode="after")
    def _unsupported(self) -> _Request:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only with stream=true")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise ValueError(f"{name}: not supported by this server (must be 0)")
        if self.logit_bias:
            raise ValueError("logit_bias: not supported by this server")
        return self


class CompletionRequest(_Request):
    prompt: str | list[str] = Field(description="One prompt or a list of prompts (token-id prompts are not accepted).")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS,
                                 description="Log-probability of each token and of its top N alternatives (0..5).")
    echo: bool = Field(False, description="Return the prompt before the completion (with logprobs: the prompt's too).")
    best_of: int | None = Field(None, description="Not supported (must be null or equal to n).")
    suffix: str | None = Field(None, description="Not supported (must be null).")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | list[str]) -> list[str]:
        prompts = [value] if isinstance(value, str) else value
        if not prompts or len(prompts) > MAX_PROMPTS:
            raise ValueError(f"give 1..{MAX_PROMPTS} prompts")
        for p in prompts:
            if not p:
                raise ValueError("prompts must not be empty")
            if len(p) > MAX_CONTENT_CHARS:
                raise ValueError(f"a prompt has at most {MAX_CONTENT_CHARS} characters")
            _storable(p)
        return prompts

    @model_validator(mode="after")
    def _completion_only(self) -> CompletionRequest:
        if self.best_of not in (None, self.n):
            raise ValueError("best_of: not supported by this server (omit it or set it equal to n)")
        if self.suffix:
            raise ValueError("suffix: not supported by this server")
        return self


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = Field(None, max_length=64)

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)

    def as_template_message(self) -> dict[str, str]:
        """What the chat template sees: `developer` is OpenAI's new name for `system`."""
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class ChatRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    logprobs: bool = Field(False, description="Return the log-probability of each output token.")
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS,
                                     description="With logprobs: the N most likely alternatives of each token (0..20).")
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT,
                                              description="OpenAI's newer name for max_tokens.")
    response_format: dict[str, Any] | None = Field(None, description="Only {'type': 'text'}.")

    @model_validator(mode="after")
    def _chat_only(self) -> ChatRequest:
        total = 0
        for i, m in enumerate(self.messages):
            text = m.text()
            total += len(text)
            try:
                _storable(text)
            except ValueError as exc:
                raise ValueError(f"messages.{i}.content: {exc}") from None
        if total > MAX_CONTENT_CHARS:
            raise ValueError(f"messages: at most {MAX_CONTENT_CHARS} characters of content in all")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs=true")
        if self.max_completion_tokens is not None:
            if self.max_tokens is not None and self.max_tokens != self.max_completion_tokens:
                raise ValueError("max_completion_tokens: differs from max_tokens; send one of them")
            self.max_tokens = self.max_completion_tokens
        if self.response_format not in (None, {"type": "text"}):
            raise ValueError("response_format: only {'type': 'text'} is supported")
        return self


# ------------------------------------------------------------------ responses


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LLMOpsInfo(BaseModel):
    """Where to send feedback for this answer, and which model version gave it."""

    item_id: int = Field(description="Feedback item of the first prompt (the only one for chat).")
    item_ids: list[int] = Field(description="One feedback item per prompt.")
    response_ids: list[int] = Field(description="Feedback response id of each choice, in choice order.")
    model: str = Field(description="The reference the server was started with (e.g. registry:docs@production).")
    model_version: str = Field(description="The version that answered: NAME/VERSION for registry models, else a hash.")
    model_sha256: str


class CompletionLogprobs(BaseModel):
    """OpenAI's legacy completions format; the first token of an echoed prompt has no log-probability."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None
    text_offset: list[int]


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChatLogprobs(BaseModel):
    content: list[TokenLogprob]


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: CompletionLogprobs | None = None
    response_id: int
    item_id: int


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: Usage
    llmops: LLMOpsInfo


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: ChatLogprobs | None = None
    response_id: int
    item_id: int


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: Usage
    llmops: LLMOpsInfo
