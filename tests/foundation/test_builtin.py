"""Built-in models: deterministic builds, plain-transformers loading, a safe shared cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from llmops.models.builtin import BUILTINS, SIDECAR, build, get_spec
from llmops.models.refs import model_hash


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_two_builds_with_the_same_seed_are_identical(tmp_path):
    spec = dataclasses.replace(BUILTINS["tiny"], steps=3, batch_size=4)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build(spec, a, progress=False)
    build(spec, b, progress=False)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json", SIDECAR):
        assert _sha(a / name) == _sha(b / name), name
    assert model_hash(a) == model_hash(b)
    build(dataclasses.replace(spec, seed=spec.seed + 1), c, progress=False)
    assert _sha(a / "model.safetensors") != _sha(c / "model.safetensors")
    assert _sha(a / "tokenizer.json") == _sha(c / "tokenizer.json")  # the tokenizer depends on the corpus only


def test_cached_tiny_is_a_plain_hf_model_that_generates(tiny_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir)).eval()
    assert model.config.model_type == "llama" and model.config.tie_word_embeddings
    assert 1_000_000 < model.num_parameters() < 2_000_000
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    assert tok.eos_token == "<|end|>" and model.config.eos_token_id == tok.eos_token_id
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    ids = tok.apply_chat_template(chat, return_dict=False)
    assert ids[-1] == tok.eos_token_id and tok.decode(ids) == "<|user|>\nHi<|end|><|assistant|>\nYo<|end|>"
    prompt = tok.apply_chat_template(chat[:1], add_generation_prompt=True, return_dict=False)
    assert tok.decode(prompt).endswith("<|assistant|>\n")
    enc = tok("Return the number of", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    new = out[0, enc["input_ids"].shape[1]:]
    assert 1 <= len(new) <= 8 and tok.decode(new).strip()


def test_tiny_was_pretrained_not_noise(tiny_dir):
    meta = json.loads((tiny_dir / SIDECAR).read_text())
    assert meta["ref"] == "builtin:tiny" and meta["spec_hash"] == get_spec("tiny").spec_hash()
    assert len(meta["corpus"]["sha256"]) == 64 and meta["build_seed"] == BUILTINS["tiny"].seed
    pre = meta["pretrain"]
    # held-out (task-module) docstrings: well below the uniform-guess loss ln(4096) = 8.3
    assert pre["heldout_loss_init"] > 8.0 and pre["heldout_loss"] < pre["heldout_loss_init"] - 2.0


@pytest.mark.slow
def test_teacher_shares_the_tokenizer_is_larger_and_better(tiny_dir):
    from llmops.models.builtin import materialize

    teacher = materialize("tiny-teacher")
    assert _sha(teacher / "tokenizer.json") == _sha(tiny_dir / "tokenizer.json")
    t_meta = json.loads((teacher / SIDECAR).read_text())
    s_meta = json.loads((tiny_dir / SIDECAR).read_text())
    assert t_meta["param_count"] > 1.5 * s_meta["param_count"]
    assert t_meta["init_from"]["ref"] == "builtin:tiny"
    assert t_meta["pretrain"]["heldout_loss"] < s_meta["pretrain"]["heldout_loss"]  # a teacher worth distilling


def test_unknown_builtin_is_a_user_error():
    from llmops.cli.main import main
    from llmops.errors import ModelRefError

    with pytest.raises(ModelRefError, match="unknown built-in model `builtin:huge`.*builtin:tiny"):
        get_spec("huge")
    assert main(["models", "path", "builtin:huge"]) == 2


MICRO = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from llmops.models import builtin
builtin.BUILTINS["micro"] = builtin.BuiltinSpec(
    name="micro", description="test", hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2,
    num_kv_heads=1, vocab_size=512, steps=2, batch_size=2, seq_len=32)
print("PATH", builtin.materialize("micro"))
"""


@pytest.mark.slow
def test_concurrent_materialize_builds_once(tmp_path):
    env = {**os.environ, "LLMOPS_HOME": str(tmp_path / "home")}
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(MICRO)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {line.split(" ", 1)[1] for out in outs for line in out.splitlines() if line.startswith("PATH ")}
    assert len(paths) == 1
    assert sum(out.count("building builtin:micro") for out in outs) == 1
    models = tmp_path / "home" / "models"
    assert [p.name for p in models.iterdir() if not p.name.startswith(".")] == [os.path.basename(paths.pop())]
    assert not [p for p in models.iterdir() if p.name.startswith(".build-")]  # no temp dir left behind


def test_deepening_preserves_the_function_exactly():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llmops.models.grow import deepen

    def llama(layers: int):
        cfg = LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                          num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
        return LlamaForCausalLM(cfg).eval()

    torch.manual_seed(0)
    parent, child = llama(2), llama(4)
    x = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        before = child(input_ids=x).logits
        deepen(parent, child)
        assert not torch.allclose(before, child(input_ids=x).logits)
        torch.testing.assert_close(child(input_ids=x).logits, parent(input_ids=x).logits, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of parent layers"):
        deepen(parent, llama(3))
