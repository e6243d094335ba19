"""A checkpoint whose generation_config.json asks for everything that is not greedy.

Used by the decoding tests (hf here, vLLM in test_vllm_parity.py): the same weights and
tokenizer as `source`, with repetition penalty, n-gram blocking, beams and sampling
defaults in generation_config.json. An evaluation that honours its suite must decode it
exactly like plain greedy decoding of the original.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ADVERSARIAL = {
    "repetition_penalty": 1.8, "no_repeat_ngram_size": 2, "num_beams": 3, "length_penalty": 0.3,
    "top_k": 5, "temperature": 0.3, "bad_words_ids": None, "min_length": 6,
}


def adversarial_copy(source: Path, out_dir: Path) -> Path:
    """Copy `source` (a model directory) to `out_dir` with the adversarial generation config."""
    shutil.copytree(source, out_dir, dirs_exist_ok=True)
    path = out_dir / "generation_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    config.update(ADVERSARIAL)
    path.write_text(json.dumps(config, indent=1))
    (out_dir / "llmops_model.json").unlink(missing_ok=True)
    return out_dir


def plain_greedy(model, prompt_ids: list[int], max_new_tokens: int, eos_ids: list[int]) -> list[int]:
    """Argmax decoding by hand (one forward pass per token), the reference for greedy."""
    import torch

    ids = list(prompt_ids)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
            out.append(nxt)
            ids.append(nxt)
            if nxt in eos_ids:
                break
    return out
