"""Scoring memory does not grow with vocabulary × full sequence: logits are computed only
for the continuation (left padding + ``logits_to_keep``) and log_softmax runs per row.

Measured in a fresh process, with the peak-RSS mark reset before each measurement (Linux
``/proc/self/clear_refs``), so nothing that ran before can hide a peak: a model with a
16k vocabulary scores 8 rows of 400 context + 8 continuation tokens. The full logits of
that batch would take 8 × 400 × 16000 × 4 B = 205 MB (plus as much again for their
log_softmax); the sliced ones take 4 MB. The same process then runs the naive full forward
pass, to show the measurement would catch a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent('''
    import gc, json, resource, sys
    import torch
    from transformers import LlamaConfig, AutoModelForCausalLM
    from llmops.eval.backends.hf import HFBackend

    out = sys.argv[1]
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=16000, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, pad_token_id=0,
                         eos_token_id=1, bos_token_id=None)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)

    class Tok:
        pad_token_id, eos_token_id, bos_token_id = 0, 1, None

    backend = HFBackend(out, device="cpu", batch_size=8, tokenizer=Tok(), max_length=500)
    g = torch.Generator().manual_seed(1)
    pairs = [(torch.randint(2, 16000, (400,), generator=g).tolist(), torch.randint(2, 16000, (8,), generator=g).tolist())
             for _ in range(8)]
    backend.score_tokens(pairs[:1])  # warm-up: kernels, allocator
    gc.collect()

    def status_mb(field):  # Linux: VmHWM (peak) and VmRSS (now) in kB
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

    def reset_peak():  # "5" resets the peak RSS to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")

    reset_peak()
    before = status_mb("VmRSS")
    scored = backend.score_tokens(pairs)
    sliced = status_mb("VmHWM") - before
    ids = torch.tensor([c + t for c, t in pairs])
    gc.collect()
    reset_peak()
    before = status_mb("VmRSS")
    with torch.inference_mode():
        naive = torch.log_softmax(backend.model(input_ids=ids).logits.float(), -1)
    full = status_mb("VmHWM") - before
    print(json.dumps({"sliced_mb": sliced, "full_mb": full, "logprobs": [s.logprob for s in scored]}))
''')


def test_scoring_peak_memory_does_not_grow_with_vocab_times_sequence(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "wide-vocab")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["full_mb"] > 200, result  # the naive pass is visible to this measurement
    assert result["sliced_mb"] < 40, result  # sliced: a few MB of logits, no vocab × 400 × 8 tensor
    assert all(lp < 0 for lp in result["logprobs"])
