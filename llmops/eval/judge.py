"""LLM-as-judge: a judge model rates responses on a rubric, or picks the better of two.

The judge runs through any backend (a local checkpoint via hf/vllm, or an
OpenAI-compatible endpoint). Prompts follow the MT-Bench judge format (Zheng et al., 2023):
the verdict is written as ``[[7]]`` (rubric, 1–10) or ``[[A]]``/``[[B]]``/``[[C]]``
(pairwise, C = tie) and parsed strictly; an answer without one is counted as a parse
failure, never guessed. Pairwise judging asks twice with the two responses swapped and
keeps a win only when both orders agree (otherwise a tie), which cancels position bias.
The judge's model, prompt version and decoding are part of every result's provenance.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from llmops.eval.backends import Backend, GenerationParams, Prompt, load_backend

PROMPT_VERSION = "llmops-judge-v1"
DEFAULT_RUBRIC = (
    "Consider helpfulness, relevance, accuracy and level of detail. If a reference answer is given, "
    "judge correctness against it."
)
SYSTEM = "You are a careful, impartial judge of AI assistant responses."
RUBRIC_TEMPLATE = """Please act as an impartial judge and rate the quality of the response to the user question below.
{rubric}
Begin with a short explanation, then give your rating on a scale of 1 to 10 strictly in this format: "[[rating]]", for example: "Rating: [[5]]".

[Question]
{question}
{reference_block}
[The Start of the Response]
{response}
[The End of the Response]"""
PAIRWISE_TEMPLATE = """Please act as an impartial judge and decide which of the two responses below answers the user question better.
{rubric}
Do not let the order of the responses, their length or the assistants' names influence you. Begin with a short explanation, then give your verdict strictly in this format: "[[A]]" if response A is better, "[[B]]" if response B is better, "[[C]]" for a tie.

[Question]
{question}
{reference_block}
[The Start of Response A]
{a}
[The End of Response A]

[The Start of Response B]
{b}
[The End of Response B]"""
_RATING = re.compile(r"\[\[(10|[1-9])(?:\.\d+)?\]\]")
_VERDICT = re.compile(r"\[\[([ABC])\]\]")


def prompt_hash(rubric: str) -> str:
    text = "\n".join([PROMPT_VERSION, SYSTEM, RUBRIC_TEMPLATE, PAIRWISE_TEMPLATE, rubric])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_rating(text: str) -> int | None:
    """The last ``[[N]]`` rating in the judge's answer (1–10), or None."""
    found = _RATING.findall(text)
    return int(found[-1]) if found else None


def parse_verdict(text: str) -> str | None:
    found = _VERDICT.findall(text)
    return found[-1] if found else None


def combine(first: str | None, swapped: str | None) -> float | None:
    """Candidate's score from (candidate as A) and (candidate as B) verdicts: 1 win, 0 loss, 0.5 tie.

    A win needs both orders to agree; disagreeing orders are a tie; a parse failure on
    either side is None.
    """
    if first is None or swapped is None:
        return None
    cand_first = {"A": 1.0, "B": 0.0, "C": 0.5}[first]
    cand_swapped = {"A": 0.0, "B": 1.0, "C": 0.5}[swapped]
    return cand_first if cand_first == cand_swapped else 0.5


@dataclass
class JudgeConfig:
    model: str
    backend: str = "hf"
    base_url: str | None = None
    api_key_env: str | None = None
    rubric: str = DEFAULT_RUBRIC
    max_new_tokens: int = 256
    dtype: str = "float32"

    def provenance(self) -> dict[str, Any]:
        return {"judge_model": self.model, "judge_backend": self.backend, "judge_base_url": self.base_url,
                "prompt_version": PROMPT_VERSION, "prompt_sha": prompt_hash(self.rubric),
                "decoding": {"temperature": 0.0, "max_new_tokens": self.max_new_tokens}}


class Judge:
    """A judge model behind the text-level backend interface (greedy decoding)."""

    def __init__(self, config: JudgeConfig, backend: Backend | None = None) -> None:
        self.config = config
        self.backend = backend or self._load()
        self.tokenizer = getattr(self.backend, "tokenizer", None)

    def _load(self) -> Backend:
        c = self.config
        if c.backend == "openai":
            return load_backend("openai", c.model, base_url=c.base_url, api_key_env=c.api_key_env)
        from llmops.models.refs import resolve

        return load_backend(c.backend, resolve(c.model), dtype=c.dtype, batch_size=8)

    def _prompt(self, user: str) -> Prompt:
        messages = (("system", SYSTEM), ("user", user))
        if not getattr(self.backend, "needs_rendered_prompts", True):
            return Prompt("", False, messages)
        template = getattr(self.tokenizer, "chat_template", None)
        if template:
            try:
                text = self.tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages],
                                                          tokenize=False, add_generation_prompt=True)
            except Exception:  # noqa: BLE001 - templates without a system role (e.g. Gemma)
                text = self.tokenizer.apply_chat_template([{"role": "user", "content": f"{SYSTEM}\n\n{user}"}],
                                                          tokenize=False, add_generation_prompt=True)
            return Prompt(text, False, messages)
        return Prompt(f"{SYSTEM}\n\n{user}\n\nJudgement:", True, messages)

    def _ask(self, users: list[str]) -> list[str]:
        from llmops.eval.requests import GenerateRequest, answer

        params = GenerationParams(max_new_tokens=self.config.max_new_tokens, temperature=0.0)
        return [g.text for g in answer(self.backend, [GenerateRequest(self._prompt(u), params) for u in users])]

    def rate(self, questions: list[str], responses: list[str], references: list[str | None]) -> list[tuple[int | None, str]]:
        users = [RUBRIC_TEMPLATE.format(rubric=self.config.rubric, question=q, response=r,
                                        reference_block=_reference(ref))
                 for q, r, ref in zip(questions, responses, references)]
        return [(parse_rating(t), t) for t in self._ask(users)]

    def compare(self, questions: list[str], candidates: list[str], baselines: list[str],
                references: list[str | None]) -> list[tuple[float | None, str, str]]:
        def user(q: str, a: str, b: str, ref: str | None) -> str:
            return PAIRWISE_TEMPLATE.format(rubric=self.config.rubric, question=q, a=a, b=b,
                                            reference_block=_reference(ref))

        n = len(questions)
        users = [user(q, c, b, r) for q, c, b, r in zip(questions, candidates, baselines, references)]
        users += [user(q, b, c, r) for q, c, b, r in zip(questions, candidates, baselines, references)]
        answers = self._ask(users)
        return [(combine(parse_verdict(answers[i]), parse_verdict(answers[n + i])), answers[i], answers[n + i])
                for i in range(n)]

    def close(self) -> None:
        self.backend.close()


def _reference(ref: str | None) -> str:
    return f"\n[Reference Answer]\n{ref}\n" if ref else ""


Mode = Literal["rubric", "pairwise"]
