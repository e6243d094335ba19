"""The frozen reference policy of DPO and RLOO: the policy *as it was when training began*.

Three cases, chosen to be correct first and cheap second:

- a fresh LoRA adapter on a base model: the reference is the base, i.e. the policy with
  its adapter disabled; no second copy of the weights;
- training continues an existing (e.g. SFT) LoRA adapter: the reference is **that
  adapter**, loaded a second time, frozen, under the name ``ref`` and switched on only
  for reference forwards. Disabling the adapter would give the bare base model, which is
  the classic bug this module exists to avoid;
- full fine-tuning (with or without a merged starting adapter): a frozen copy of the
  starting weights.

With ``dpo.precompute_ref_logps`` the reference runs once over the data and is dropped.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator, Literal

import torch

from llmops.config.schema import Recipe
from llmops.preference.logps import sequence_logps
from llmops.models.refs import ResolvedModel

log = logging.getLogger(__name__)
REF_ADAPTER = "ref"
ReferenceKind = Literal["disabled_adapter", "ref_adapter", "copy"]


def _is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


class ReferencePolicy:
    """Log-probs of the frozen starting policy for a trainable `policy` built from `recipe`."""

    def __init__(
        self, recipe: Recipe, policy: torch.nn.Module, prepare_frozen: Callable[[torch.nn.Module], Any],
        base: ResolvedModel | None = None, adapter: ResolvedModel | None = None,
    ):
        """`base`/`adapter`: the recipe's models as the caller already resolved them."""
        from llmops.models.refs import resolve

        m = recipe.model
        base = base or resolve(m.base, m.revision)
        adapter = adapter or (resolve(m.adapter) if m.adapter else None)
        self.copy: torch.nn.Module | None = None
        if recipe.lora.enabled and adapter is not None:
            self.kind: ReferenceKind = "ref_adapter"
            policy.load_adapter(str(adapter.path), adapter_name=REF_ADAPTER, is_trainable=False)
            self.description = f"adapter {m.adapter} (frozen copy)"
        elif recipe.lora.enabled:
            self.kind = "disabled_adapter"
            self.description = f"{m.base} (policy with its adapter disabled)"
        else:
            from llmops.models.loading import load_causal_lm

            self.kind = "copy"
            copy = load_causal_lm(base, dtype=m.dtype, adapter=adapter, trust_remote_code=m.trust_remote_code)
            if m.adapter:
                copy = copy.merge_and_unload()
            self.copy = prepare_frozen(copy)
            merged = f" + {m.adapter} merged" if m.adapter else ""
            self.description = f"{m.base}{merged} (frozen copy)"
        log.info("reference policy: %s", self.description)

    @contextmanager
    def _active(self, policy: torch.nn.Module) -> Iterator[torch.nn.Module]:
        if self.kind == "copy":
            yield self.copy
        elif self.kind == "disabled_adapter":
            with policy.disable_adapter():
                yield policy
        else:
            previous = policy.active_adapter
            policy.set_adapter(REF_ADAPTER, inference_mode=True)
            try:
                yield policy
            finally:
                policy.set_adapter(previous)
                # peft marks only the active adapter trainable; the reference must never be.
                for name, p in policy.named_parameters():
                    if f".{REF_ADAPTER}." in name:
                        p.requires_grad_(False)

    @torch.no_grad()
    def logps(self, policy: torch.nn.Module, batch: dict[str, torch.Tensor], autocast=None, temperature: float = 1.0):
        """(summed completion log-probs, token counts) under the reference; `policy` unwrapped."""
        was_training = policy.training
        policy.eval()  # no dropout in the reference, ever
        try:
            with self._active(policy) as model, (autocast or nullcontext()):
                return sequence_logps(model, batch, temperature)
        finally:
            policy.train(was_training)

    def drop(self, policy: torch.nn.Module) -> None:
        """Free the reference's memory (after precomputing its log-probs)."""
        if self.kind == "ref_adapter" and REF_ADAPTER in policy.peft_config:
            policy.delete_adapter(REF_ADAPTER)
        self.copy = None

    def before_save(self, policy: torch.nn.Module) -> None:
        """`save_pretrained` writes every adapter: remove the reference copy first."""
        if self.kind == "ref_adapter" and _is_peft(policy) and REF_ADAPTER in policy.peft_config:
            policy.delete_adapter(REF_ADAPTER)
