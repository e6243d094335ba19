"""Continuing an adapter: the adapter's own LoRA settings win, so recipe keys that differ are errors.

With ``model.adapter`` and ``lora.enabled`` the run trains the saved adapter as it is:
peft rebuilds it from its ``adapter_config.json`` and ``lora.r``, ``alpha``, ``dropout``,
``target_modules`` and ``use_dora`` from the recipe would silently do nothing. A key the
recipe *sets* (not a default) to a value the adapter does not have is refused, naming
both values; keys left at their defaults are simply taken from the adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmops.config.schema import LoraSection
from llmops.errors import ConfigError

# recipe key -> adapter_config.json key
ADAPTER_KEYS = {"r": "r", "alpha": "lora_alpha", "dropout": "lora_dropout", "target_modules": "target_modules",
                "use_dora": "use_dora"}


def _normalise(key: str, value: Any) -> Any:
    if key == "target_modules" and isinstance(value, (list, tuple, set)):
        return sorted(value)
    if key in {"alpha", "dropout"} and value is not None:
        return float(value)
    return value


def ignored_lora_keys(lora: LoraSection, adapter_config: dict[str, Any]) -> list[str]:
    """``lora.KEY: recipe -> adapter`` for each key the recipe sets that the adapter overrides."""
    out = []
    for key, theirs in ADAPTER_KEYS.items():
        if key not in lora.model_fields_set or theirs not in adapter_config:
            continue
        mine, saved = _normalise(key, getattr(lora, key)), _normalise(key, adapter_config[theirs])
        if key == "target_modules" and mine == "all-linear":
            continue  # peft stores the expanded list; the adapter targets what it targets
        if mine != saved:
            out.append(f"lora.{key}: {getattr(lora, key)!r} (adapter has {adapter_config[theirs]!r})")
    return out


def check_continued_adapter(lora: LoraSection, adapter_dir: Path) -> None:
    """Raise ConfigError when the recipe's lora keys would be ignored by continuing `adapter_dir`."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        return
    ignored = ignored_lora_keys(lora, json.loads(path.read_text()))
    if ignored:
        raise ConfigError(
            f"model.adapter {adapter_dir} is continued with its own LoRA settings, so these recipe keys would be "
            f"ignored: {'; '.join(ignored)}. Remove them (or match the adapter), or train a new adapter without "
            "model.adapter"
        )
