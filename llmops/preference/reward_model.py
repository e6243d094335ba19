"""Reward models: a causal LM backbone with a one-output sequence-classification head.

The score is read at each row's *last real token*, located from the attention mask.
transformers' own pooling finds "the rightmost token that is not pad_token_id", which
reads the wrong token when pad == eos (the eos that ends every chat turn looks like
padding) and fails outright without a pad id. We therefore capture the head's
per-position output with a forward hook (so the call still goes through DDP/peft
wrappers) and gather the position ourselves; position ids come from the mask, so left
and right padding give the same score.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from llmops.errors import ModelRefError

if TYPE_CHECKING:
    from llmops.models.refs import ResolvedModel

log = logging.getLogger(__name__)

HEAD_NAMES = ("score", "classifier")  # Llama/Qwen/Mistral/GPT-2 use `score`


def unwrap(model):
    """The underlying HF model below DDP/compile and peft wrappers."""
    while hasattr(model, "module") and model.module is not model and hasattr(model.module, "forward"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def score_head(model):
    """The classification head module of a (possibly wrapped) sequence-classification model."""
    inner = unwrap(model)
    for name in HEAD_NAMES:
        head = getattr(inner, name, None)
        if head is not None:
            return head
    raise ModelRefError(f"{type(inner).__name__}: no sequence-classification head ({' or '.join(HEAD_NAMES)})")


def last_token_index(attention_mask) -> Any:
    """Index of the last position with mask 1 in each row (works for left and right padding)."""
    import torch

    width = attention_mask.shape[1]
    positions = torch.arange(width, device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values


@contextmanager
def _capture(module) -> Iterator[list]:
    captured: list = []
    handle = module.register_forward_hook(lambda _m, _inp, out: captured.append(out))
    try:
        yield captured
    finally:
        handle.remove()


def sequence_scores(model, input_ids, attention_mask):
    """fp32 reward per row, read at the last real token. Differentiable."""
    import torch

    from llmops.preference.logps import position_ids_from_mask

    with _capture(score_head(model)) as captured:
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            use_cache=False,
        )
    per_position = captured[-1]
    if per_position.dim() != 3 or per_position.shape[-1] != 1:
        raise ModelRefError(f"reward head must have one output, got shape {tuple(per_position.shape)}")
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    return per_position[rows, last_token_index(attention_mask), 0].float()


def load_reward_model(
    ref: "str | ResolvedModel",
    dtype: str = "float32",
    adapter: "str | ResolvedModel | None" = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    pad_token_id: int | None = None,
):
    """A one-output `AutoModelForSequenceClassification` from any model reference.

    A causal LM gets a freshly initialised head (transformers warns about it; expected).
    A LoRA adapter (as `ref` or `adapter`, e.g. an SFT adapter) is merged into the
    backbone, so the reward model starts from the SFT policy.
    """
    from transformers import AutoModelForSequenceClassification

    from llmops.models.loading import _torch_dtype
    from llmops.models.refs import resolve

    resolved = resolve(ref, revision)
    adapter_dir = None
    if resolved.is_adapter:
        if adapter:
            raise ModelRefError(f"{resolved.ref} is already an adapter; pass its base as the model and it as adapter")
        adapter_dir = str(resolved.path)
    elif adapter:
        adapter_dir = str(resolve(adapter).path)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(resolved.weights_path), num_labels=1, dtype=_torch_dtype(dtype), trust_remote_code=trust_remote_code
    )
    if adapter_dir:
        from peft import PeftConfig, PeftModel

        config = PeftConfig.from_pretrained(adapter_dir)
        # An SFT adapter is a CAUSAL_LM adapter; with its task type peft would wrap this
        # classifier as a causal LM (and fail). The generic wrapper merges the shared layers.
        config.task_type = None
        model = PeftModel.from_pretrained(model, adapter_dir, config=config).merge_and_unload()
        model.requires_grad_(True)  # peft loaded it for inference (frozen); the caller decides what trains
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model


class RewardScorer:
    """Score (prompt, response) pairs with a trained reward model; used by `llmops reward score`, RLOO and eval."""

    def __init__(
        self,
        ref: str,
        max_length: int = 1024,
        chat_template: bool = True,
        dtype: str = "float32",
        device: str | None = None,
        model=None,
        tokenizer=None,
    ) -> None:
        import torch

        from llmops.models.loading import load_tokenizer
        from llmops.preference.data import PairTokenizer

        self.ref = ref
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(ref)
        self.model = model if model is not None else load_reward_model(ref, dtype, pad_token_id=self.tokenizer.pad_token_id)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.pairs = PairTokenizer(self.tokenizer, max_length, chat_template)

    def score(self, prompts: Sequence[Any], responses: Sequence[Any], batch_size: int = 16) -> list[float]:
        """One reward per (prompt, response); batches are sorted by length to cut padding."""
        import torch

        from llmops.preference.data import collate_sequences

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        seqs = [self.pairs.single(p, r) for p, r in zip(prompts, responses)]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]["input_ids"]))
        scores = [0.0] * len(seqs)
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = collate_sequences([seqs[i] for i in idx], self.tokenizer.pad_token_id)
                out = sequence_scores(
                    self.model, batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
                )
                for i, s in zip(idx, out.tolist()):
                    scores[i] = s
        return scores


def save_reward_model(model, tokenizer, out_dir: Path, sidecar: dict[str, Any]) -> None:
    """Write an `AutoModelForSequenceClassification`-loadable directory (LoRA merged in)."""
    import json

    from llmops.models.loading import SIDECAR

    inner = model
    if hasattr(inner, "merge_and_unload"):
        inner = inner.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    inner.config.pad_token_id = tokenizer.pad_token_id
    inner.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / SIDECAR).write_text(json.dumps({"kind": "reward_model", **sidecar}, indent=2))
