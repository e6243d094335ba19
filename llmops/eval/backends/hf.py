"""The default backend: transformers, batched.

Generation sorts requests by prompt length (longest first: similar lengths share a
batch, so little padding, and an out-of-memory error shows up in the first batch), cuts
batches by rows and, on CPU, by padded tokens (`CPU_GENERATE_TOKENS`), pads
on the left so every row's next token sits in the last column, uses the KV cache, and
restores the caller's order. With greedy decoding in fp32 the outputs do not depend on
the batch size (tested at 1, 7 and 32); bf16/fp16 kernels are not batch invariant.

Plain greedy decoding (no stop strings, penalty or forced length) in fp32 on CPU runs the same
forward calls as `generate` in a loop of its own that drops each row from the batch (and its
KV cache) at its EOS token, instead of feeding it padding until the longest row ends; the
tokens are `generate`'s (tested against it). Everything else goes through `generate`.

Decoding is exactly `GenerationParams`: every field of the GenerationConfig is set here
and the checkpoint's own ``generation_config.json`` (which transformers would otherwise
merge into every unset field: repetition penalty, n-gram blocking, beams, top-k, ...)
is replaced by one holding only its token ids; what it held is kept in
`checkpoint_generation_config` for the provenance.

Scoring keeps memory independent of vocabulary × sequence: rows are padded on the left so
every continuation ends in the last column, the model computes logits only for the last
``max(continuation)`` positions (``logits_to_keep``), and batches are cut by a token
budget rather than a row count.
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
    TokenLogprob,
    context_window,
    encode_prompt,
    truncate_at_stop,
)

if TYPE_CHECKING:
    from llmops.models.refs import ResolvedModel


CPU_BATCH_SIZE = 64  # measured on the built-in model: 9.5k tok/s at 64 vs 7.3k at 32 (FACTS.md §7)
CPU_BATCH_TOKENS = 16384
# Generation on CPU: a batch also stays within this many padded tokens (rows × (longest prompt +
# max_new_tokens)). On the 200 docstring prompts (17–576 tokens) generation took 3.5–4.1 CPU s
# at 4096–8192 against 5.5–5.9 with 64 rows regardless of length; short prompts still get 64 rows.
CPU_GENERATE_TOKENS = 8192
# Fields a checkpoint's generation_config.json may set that change which tokens come out.
NEUTRAL_GREEDY = {
    "do_sample": False, "num_beams": 1, "num_beam_groups": 1, "temperature": 1.0, "top_k": 50, "top_p": 1.0,
    "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0, "length_penalty": 1.0, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "diversity_penalty": 0.0, "num_return_sequences": 1, "early_stopping": False,
    "min_length": 0, "renormalize_logits": False, "remove_invalid_values": False, "penalty_alpha": None,
    "guidance_scale": None, "low_memory": None, "sequence_bias": None, "bad_words_ids": None,
    "force_words_ids": None, "suppress_tokens": None, "begin_suppress_tokens": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "exponential_decay_length_penalty": None, "min_p": None, "max_time": None,
    "watermarking_config": None, "prompt_lookup_num_tokens": None,
}
TOKEN_ID_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def probe_batch_size(model: Any, width: int, device: Any, start: int = 512) -> int:
    """Largest power-of-two batch (<= `start`) whose forward pass at `width` tokens fits in
    accelerator memory, halving on out-of-memory (what ``--batch-size auto`` means on a GPU)."""
    import torch

    size = start
    while size > 1:
        try:
            with torch.inference_mode():
                model(input_ids=torch.zeros((size, width), dtype=torch.long, device=device), logits_to_keep=1)
            return size
        except torch.OutOfMemoryError:
            size //= 2
        finally:
            torch.cuda.empty_cache()
    return 1


def token_budget_batches(order: list[int], lengths: list[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Split `order` (longest first) into batches of at most `max_rows` rows whose padded
    size (rows × longest row) stays within `max_tokens`; a row longer than the budget
    goes alone."""
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < max_rows and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class HFBackend(TokenBackend):
    name = "hf"

    def __init__(
        self, model_ref: str | ResolvedModel, dtype: str = "float32", device: str | None = None,
        batch_size: int | str = 32, max_length: int | None = None, trust_remote_code: bool = False,
        tokenizer: Any = None, max_batch_tokens: int | None = None,
    ) -> None:
        """`model_ref` resolved once by the caller (or here); `tokenizer`: the caller's, when it has one.

        `batch_size`: rows per generation batch, or ``"auto"`` (on a GPU the largest batch whose
        full-window forward pass fits, on CPU 64). `max_batch_tokens`: padded tokens per scoring
        batch (default: batch size × window on a GPU, 16384 on CPU)."""
        super().__init__()
        from llmops.gc_policy import heavy_import

        with heavy_import("torch"):
            import torch

        from llmops.models.loading import load_causal_lm, load_tokenizer
        from llmops.models.refs import resolve

        model = resolve(model_ref)
        self.device = torch.device(device or default_device())
        self.tokenizer = tokenizer or load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.model = load_causal_lm(model, dtype=dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        self._attach(batch_size, max_length, max_batch_tokens)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, batch_size: int | str = 32, max_length: int | None = None,
                    max_batch_tokens: int | None = None) -> "HFBackend":
        """A backend over a model already in memory (e.g. the one being trained), on its own device.

        The model's `generation_config` is replaced by one holding only token ids, as for a loaded
        checkpoint; callers that must keep theirs save and restore it around the backend's use."""
        self = cls.__new__(cls)
        TokenBackend.__init__(self)
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        self._attach(batch_size, max_length, max_batch_tokens)
        return self

    def _attach(self, batch_size: int | str, max_length: int | None, max_batch_tokens: int | None) -> None:
        config = self.model.config
        model_max = getattr(config, "max_position_embeddings", None) or 2048
        self.max_length = context_window(model_max, max_length)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._neutralise_checkpoint_generation_config()
        import inspect

        forward = inspect.signature(self.model.forward).parameters
        self._keeps_logits = "logits_to_keep" in forward or any(p.kind == p.VAR_KEYWORD for p in forward.values())
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        if batch_size == "auto":
            batch_size = (probe_batch_size(self.model, self.max_length, self.device) if self.device.type == "cuda"
                          else CPU_BATCH_SIZE)
        self.batch_size = int(batch_size)
        default_tokens = self.batch_size * self.max_length if self.device.type == "cuda" else CPU_BATCH_TOKENS
        self.max_batch_tokens = max_batch_tokens or default_tokens
        # on a GPU rows × window never binds, so generation batches are `batch_size` rows there
        self.max_generate_tokens = self.batch_size * self.max_length if self.device.type == "cuda" else CPU_GENERATE_TOKENS

    def _neutralise_checkpoint_generation_config(self) -> None:
        """Keep only the checkpoint's token ids; remember the rest for the provenance."""
        from transformers import GenerationConfig

        original = self.model.generation_config
        self.checkpoint_generation_config = {
            k: v for k, v in original.to_diff_dict().items() if k not in TOKEN_ID_FIELDS and k != "transformers_version"
        }
        self.model.generation_config = GenerationConfig(**{k: getattr(original, k, None) for k in TOKEN_ID_FIELDS})

    # ------------------------------------------------------------ generation

    def _generation_config(self, params: GenerationParams):
        from transformers import GenerationConfig

        kwargs: dict[str, Any] = {
            **NEUTRAL_GREEDY, "max_new_tokens": params.max_new_tokens, "pad_token_id": self.pad_id,
            "eos_token_id": self.eos_ids or None, "use_cache": True, "repetition_penalty": params.repetition_penalty,
            "min_new_tokens": params.max_new_tokens if params.ignore_eos else 0,
            "stop_strings": list(params.stop) or None,
        }
        if not params.greedy:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        return GenerationConfig(**kwargs)

    def effective_generation_config(self, params: GenerationParams) -> dict[str, Any]:
        """The config `generate` runs with, after transformers merged in the model's defaults
        (recorded in results.json), plus what the checkpoint asked for and was overridden."""
        config = self._generation_config(params)
        try:
            config, _ = self.model._prepare_generation_config(config)
        except (AttributeError, TypeError):  # private API: record the requested config instead
            pass
        effective = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
        engine = ("llmops greedy loop over the transformers forward (finished rows dropped)"
                  if self._greedy_cache_arg(params) else "transformers.generate")
        return {"engine": engine, "config": effective, "checkpoint_overridden": self.checkpoint_generation_config}

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
        # rows of a batch share its longest prompt's width: cutting batches by padded tokens as
        # well as rows keeps a few long prompts from padding many rows (fp32 greedy outputs do
        # not depend on the batching; tested)
        lengths = [len(ids) + params.max_new_tokens for ids in encoded]
        cache_arg = self._greedy_cache_arg(params)
        for batch in token_budget_batches(order, lengths, self.batch_size, self.max_generate_tokens):
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(encoded[i])
                ids[row, width - n :] = torch.tensor(encoded[i])
                mask[row, width - n :] = 1
            t0 = time.perf_counter()
            with torch.inference_mode():
                if cache_arg is not None:
                    new = self._greedy_dropping_finished(ids, mask, params.max_new_tokens, cache_arg)
                else:
                    new = self.model.generate(
                        input_ids=ids.to(self.device), attention_mask=mask.to(self.device), generation_config=config,
                        tokenizer=self.tokenizer if params.stop else None,
                    )[:, width:]
            elapsed = time.perf_counter() - t0
            new = new.tolist()
            for row, i in enumerate(batch):
                results[i] = self._finish(new[row], params, elapsed)
            self.stats.generate_seconds += elapsed
        gens = [r for r in results if r is not None]
        self.stats.generated_tokens += sum(len(g.token_ids) for g in gens)
        self.stats.latencies.extend(g.latency_s for g in gens)
        return gens

    def _greedy_cache_arg(self, params: GenerationParams) -> str | None:
        """The forward's cache argument when `_greedy_dropping_finished` may replace `generate`, else None.

        Only plain greedy decoding (no stop strings, penalty or forced length: no logits processor
        or stopping criterion but EOS and max_new_tokens) in fp32 on CPU, where the outputs do not
        depend on the batch (see the module docstring), of a decoder whose class keeps
        transformers' own `generate` and `prepare_inputs_for_generation`."""
        import torch
        from transformers import GenerationMixin

        model = self.model
        if not (params.greedy and not params.stop and params.repetition_penalty == 1.0 and not params.ignore_eos):
            return None
        if self.device.type != "cpu" or model.dtype != torch.float32 or not self._keeps_logits or model.training:
            return None
        if getattr(model.config, "is_encoder_decoder", False) or not isinstance(model, GenerationMixin):
            return None
        cls = type(model)
        if (cls.generate is not GenerationMixin.generate
                or cls.prepare_inputs_for_generation is not GenerationMixin.prepare_inputs_for_generation):
            return None
        import inspect

        forward = inspect.signature(model.forward).parameters
        if "position_ids" not in forward:
            return None
        return next((name for name in ("cache", "past_key_values") if name in forward), None)

    def _greedy_dropping_finished(self, ids: Any, mask: Any, max_new_tokens: int, cache_arg: str) -> Any:
        """Greedy decoding as `generate` does it (same position ids, attention mask, KV cache,
        fp32 argmax), except that a row leaves the batch as soon as it has produced an EOS
        token instead of being fed padding until the longest row ends (on the 200 docstring
        prompts ~40% of rows stop early; ~15% of generation time). Returns the new tokens,
        [rows, max_new_tokens], padded after EOS as `generate` pads them."""
        import torch
        from transformers import DynamicCache

        model = self.model
        rows = ids.shape[0]
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        attention = None if bool((mask == 1).all()) else mask  # generate drops an all-ones mask
        cache = DynamicCache(config=model.config.get_text_config(decoder=True))
        out = torch.full((rows, max_new_tokens), self.pad_id, dtype=torch.long)
        alive = torch.arange(rows)
        eos = torch.tensor(self.eos_ids, dtype=torch.long) if self.eos_ids else None
        step_ids, step_pos = ids, positions
        for step in range(max_new_tokens):
            logits = model(input_ids=step_ids, attention_mask=attention, position_ids=step_pos, use_cache=True,
                           logits_to_keep=1, **{cache_arg: cache}).logits
            tokens = logits[:, -1].to(dtype=torch.float32).argmax(-1)
            out[alive, step] = tokens
            if step == max_new_tokens - 1:
                break
            step_pos = step_pos[:, -1:] + 1
            if eos is not None:
                finished = torch.isin(tokens, eos)
                if bool(finished.any()):
                    keep = (~finished).nonzero().squeeze(1)
                    if keep.numel() == 0:
                        break
                    cache.batch_select_indices(keep)
                    alive, tokens, step_pos = alive[keep], tokens[keep], step_pos[keep]
                    if attention is not None:
                        attention = attention[keep]
            if attention is not None:
                attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=-1)
            step_ids = tokens[:, None]
        return out

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
            inputs.append((whole[:-1], whole[-len(cont) :]))
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i][0]))
        results: list[Loglikelihood | None] = [None] * len(inputs)
        t0 = time.perf_counter()
        for batch in token_budget_batches(order, [len(x[0]) for x in inputs], self.batch_size, self.max_batch_tokens):
            width = len(inputs[batch[0]][0])
            keep = max(len(inputs[i][1]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding: every continuation ends in the last column
                n = len(inputs[i][0])
                ids[row, width - n :] = torch.tensor(inputs[i][0])
                mask[row, width - n :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            # Models whose forward has no `logits_to_keep` compute every position's logits;
            # they are still sliced before the fp32 log_softmax.
            kept = {"logits_to_keep": keep} if self._keeps_logits else {}
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device), **kept,
                ).logits[:, -keep:]
                for row, i in enumerate(batch):
                    target = inputs[i][1]
                    m = len(target)
                    lp = torch.log_softmax(logits[row, keep - m :].float(), dim=-1)  # only this row's continuation
                    tgt = torch.tensor(target, device=lp.device)
                    picked = lp.gather(-1, tgt[:, None]).squeeze(-1)
                    greedy = bool((lp.argmax(-1) == tgt).all())
                    results[i] = Loglikelihood(float(picked.double().sum()), m, greedy)
                del logits
        self.stats.score_seconds += time.perf_counter() - t0
        self.stats.scored_tokens += sum(len(x[1]) for x in inputs)
        return [r for r in results if r is not None]

    def reset_peak_memory(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def token_logprobs(self, ids: list[int], start: int, top_k: int = 0) -> list[TokenLogprob]:
        """One forward over `ids`; log_softmax only at the positions that predict ``ids[start:]``."""
        import torch

        if not 1 <= start <= len(ids):
            raise ValueError(f"start must be in 1..{len(ids)}, got {start}")
        if len(ids) > self.max_length + 1:
            raise ValueError(f"{len(ids)} tokens do not fit the {self.max_length}-token window")
        if start == len(ids):
            return []
        with torch.inference_mode():
            x = torch.tensor([ids[:-1]], device=self.device)
            logits = self.model(input_ids=x, logits_to_keep=len(ids) - start).logits[0]  # only the scored positions
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        target = torch.tensor(ids[start:], device=logprobs.device)
        picked = logprobs.gather(-1, target[:, None]).squeeze(-1).tolist()
        tops = logprobs.topk(top_k, dim=-1) if top_k else None
        out = []
        for pos, (tid, lp) in enumerate(zip(ids[start:], picked)):
            top = list(zip(tops.indices[pos].tolist(), tops.values[pos].tolist())) if tops is not None else []
            out.append(TokenLogprob(tid, float(lp), top))
        return out

    def peak_memory_mb(self) -> dict[str, float]:
        import torch

        peak = super().peak_memory_mb()
        if self.device.type == "cuda":
            peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        return peak

    def close(self) -> None:
        del self.model  # freed by reference counting; a full gc pass only matters for accelerator memory
        if self.device.type == "cuda":
            import gc

            import torch

            gc.collect()
            torch.cuda.empty_cache()
