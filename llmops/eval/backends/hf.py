"""The default backend: transformers, batched.

Generation sorts requests by prompt length (longest first: similar lengths share a
batch, so little padding, and an out-of-memory error shows up in the first batch), pads
on the left so every row's next token sits in the last column, uses the KV cache, and
restores the caller's order. With greedy decoding in fp32 the outputs do not depend on
the batch size (tested at 1, 7 and 32); bf16/fp16 kernels are not batch invariant.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmops.eval.backends.base import (
    Generation,
    GenerationParams,
    Loglikelihood,
    Prompt,
    TokenBackend,
    context_window,
    encode_prompt,
    truncate_at_stop,
)

if TYPE_CHECKING:
    from llmops.models.refs import ResolvedModel


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class HFBackend(TokenBackend):
    name = "hf"

    def __init__(
        self, model_ref: str | ResolvedModel, dtype: str = "float32", device: str | None = None, batch_size: int = 32,
        max_length: int | None = None, trust_remote_code: bool = False, tokenizer: Any = None,
    ) -> None:
        """`model_ref` resolved once by the caller (or here); `tokenizer`: the caller's, when it has one."""
        super().__init__()
        import torch

        from llmops.models.loading import load_causal_lm, load_tokenizer
        from llmops.models.refs import resolve

        model = resolve(model_ref)
        self.device = torch.device(device or default_device())
        self.batch_size = batch_size
        self.tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.model = load_causal_lm(model, dtype=dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        config = self.model.config
        model_max = getattr(config, "max_position_embeddings", None) or 2048
        self.max_length = context_window(model_max, max_length)
        self.pad_id = self.tokenizer.pad_token_id
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)

    # ------------------------------------------------------------ generation

    def _generation_config(self, params: GenerationParams):
        from transformers import GenerationConfig

        kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "pad_token_id": self.pad_id,
                                  "eos_token_id": self.eos_ids or None, "use_cache": True}
        if params.greedy:
            kwargs["do_sample"] = False
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs["stop_strings"] = list(params.stop)
        return GenerationConfig(**kwargs)

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        import torch

        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        budget = self.max_length - params.max_new_tokens
        if budget < 1:
            raise ValueError(f"max_new_tokens={params.max_new_tokens} leaves no room in a {self.max_length}-token window")
        encoded = [ids[-budget:] for ids in encoded]  # keep the end of over-long prompts
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        config = self._generation_config(params)
        if not params.greedy:
            torch.manual_seed(params.seed)
        results: list[Generation | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(encoded[i])
                ids[row, width - n :] = torch.tensor(encoded[i])
                mask[row, width - n :] = 1
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), generation_config=config,
                    tokenizer=self.tokenizer if params.stop else None,
                )
            elapsed = time.perf_counter() - t0
            for row, i in enumerate(batch):
                results[i] = self._finish(out[row, width:].tolist(), params, elapsed)
            self.stats.generate_seconds += elapsed
        gens = [r for r in results if r is not None]
        self.stats.generated_tokens += sum(len(g.token_ids) for g in gens)
        self.stats.latencies.extend(g.latency_s for g in gens)
        return gens

    def _finish(self, tokens: list[int], params: GenerationParams, elapsed: float) -> Generation:
        """Drop padding after the end, decode, apply stop strings."""
        reason = "length"
        for pos, tok in enumerate(tokens):
            if tok in self.eos_ids:
                tokens, reason = tokens[: pos + 1], "eos"
                break
        else:
            while tokens and tokens[-1] == self.pad_id and self.pad_id not in self.eos_ids:
                tokens = tokens[:-1]  # stopped by a stop string while others went on
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, params.stop)
        return Generation(text=text, token_ids=tokens, latency_s=elapsed, finish_reason="stop" if stopped else reason)

    # ------------------------------------------------------------ scoring

    def score_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[Loglikelihood]:
        import torch

        inputs = []
        for ctx, cont in pairs:
            whole = (ctx + cont)[-(self.max_length + 1) :]
            inputs.append((whole[:-1], whole[-len(cont) :], len(cont)))
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i][0]))
        results: list[Loglikelihood | None] = [None] * len(inputs)
        t0 = time.perf_counter()
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(inputs[i][0]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(inputs[i][0])
                ids[row, :n] = torch.tensor(inputs[i][0])
                mask[row, :n] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(batch):
                inp, target, m = inputs[i]
                n = len(inp)
                lp = logprobs[row, n - m : n]
                tgt = torch.tensor(target, device=lp.device)
                picked = lp.gather(-1, tgt[:, None]).squeeze(-1)
                greedy = bool((lp.argmax(-1) == tgt).all())
                results[i] = Loglikelihood(float(picked.double().sum()), m, greedy)
        self.stats.score_seconds += time.perf_counter() - t0
        self.stats.scored_tokens += sum(x[2] for x in inputs)
        return [r for r in results if r is not None]

    def peak_memory_mb(self) -> dict[str, float]:
        import torch

        peak = super().peak_memory_mb()
        if self.device.type == "cuda":
            peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        return peak

    def close(self) -> None:
        import gc

        import torch

        del self.model
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
