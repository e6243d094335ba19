"""One-GPU check of the training stack: prints ONE JSON summary (see benchmarks/gpu_check.sh).

On a randomly initialised ~0.5B Llama (built locally, nothing downloaded):

1. SFT full and SFT LoRA, bf16, sdpa, padding-free packing (``position_ids``) through
   ``llmops train`` -> tokens/s over all non-pad tokens and MFU (`llmops.train.flops`);
2. DPO (LoRA, bf16) steps/s and pairs/s;
3. greedy generation, transformers vs vLLM (if importable): tokens/s and token agreement.

Each section has a step budget sized for <= 8 minutes on one H200 in total; a section
that fails is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def _records(n: int, max_words: int, seed: int = 0) -> list[dict]:
    from train_throughput import skewed_records

    return skewed_records(n, max_words, seed)


def _run_recipe(recipe: dict, tmp: Path, name: str):
    import yaml

    from llmops.config import load_recipe
    from llmops.train import run

    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return run(load_recipe(path))


def sft(model_dir: str, tmp: Path, lora: bool, steps: int, batch: int, max_length: int) -> dict:
    """A packed SFT run; FLOPs from the exact rows the engine consumed."""
    import torch

    from llmops.data import build_sft_examples, pack_examples
    from llmops.models.loading import load_tokenizer
    from llmops.train.data_order import DataOrder
    from llmops.train.flops import ModelShape, mfu, peak_bf16_flops, training_flops

    data = tmp / "sft.jsonl"
    records = _records(8192, int(max_length * 0.8))
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    name = "sft-lora" if lora else "sft-full"
    recipe = {
        "recipe": "sft",
        "model": {"base": model_dir, "dtype": "bfloat16", "attn_implementation": "sdpa"},
        "lora": {"enabled": lora, "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "data": {"train": str(data), "max_length": max_length, "packing": True, "validation_split": 0.0,
                 "format": "prompt_completion"},
        "train": {"max_steps": steps, "batch_size": batch, "lr": 1e-5, "lr_scheduler": "constant", "log_every": 5,
                  "mixed_precision": "bf16", "optimizer_impl": "fused"},
        "output": {"dir": str(tmp / name)},
    }
    result = _run_recipe(recipe, tmp, name)
    tok = load_tokenizer(model_dir)
    rows = pack_examples(build_sft_examples(records, tok, max_length)[0], max_length)
    order = DataOrder(len(rows), batch, 1, 0, 42)
    lengths = [n for p in range(steps) for i in order.batch(p) for n in rows[i]["seq_lens"]]
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        shape = ModelShape.of(AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir)))
    seconds = result.manifest["train_time_s"]
    flops = training_flops(shape, lengths)
    peak = peak_bf16_flops(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else None
    return {
        "steps": result.steps, "seconds": seconds, "tokens_non_pad": sum(lengths),
        "tokens_per_s": sum(lengths) / seconds, "supervised_tokens_per_s": result.manifest["tokens_per_s"],
        "model_tflops_per_s": flops / seconds / 1e12, "mfu": mfu(flops, seconds, peak) if peak else None,
        "peak_mem_mb": max((json.loads(x).get("peak_mem_mb", 0) for x in (tmp / name / "metrics.jsonl").read_text().splitlines()), default=None),
        "final_loss": result.metrics.get("train_loss"),
    }


def dpo(model_dir: str, tmp: Path, steps: int) -> dict:
    recipe = {
        "recipe": "dpo",
        "model": {"base": model_dir, "dtype": "bfloat16"},
        "lora": {"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0},
        "data": {"train": "builtin:docstring-prefs", "max_length": 512, "validation_split": 0.0},
        "train": {"max_steps": steps, "batch_size": 8, "lr": 1e-5, "log_every": 5, "mixed_precision": "bf16"},
        "output": {"dir": str(tmp / "dpo")},
    }
    result = _run_recipe(recipe, tmp, "dpo")
    seconds = result.manifest["train_time_s"]
    return {"steps": result.steps, "seconds": seconds, "steps_per_s": result.steps / seconds,
            "pairs_per_s": result.manifest.get("pairs_per_s"), "final_loss": result.metrics.get("train_loss")}


def generation(model_dir: str, n_prompts: int, new_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from llmops.models.loading import load_tokenizer

    tok = load_tokenizer(model_dir)
    prompts = [r["prompt"] for r in _records(n_prompts, 48, seed=1)]
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda().eval()
    batch = tok(prompts, return_tensors="pt", padding=True).to("cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    torch.cuda.synchronize()
    hf_s = time.perf_counter() - t0
    hf_tokens = out[:, batch["input_ids"].shape[1]:].tolist()
    summary = {"prompts": n_prompts, "new_tokens": new_tokens, "hf_tokens_per_s": n_prompts * new_tokens / hf_s}
    del model
    torch.cuda.empty_cache()
    try:
        from vllm import LLM, SamplingParams
    except ImportError as exc:
        summary["vllm"] = f"skipped: {exc}"
        return summary
    llm = LLM(model=model_dir, dtype="bfloat16", gpu_memory_utilization=0.5, max_model_len=1024, seed=0)
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True)
    t0 = time.perf_counter()
    outs = llm.generate(prompts, params)
    vllm_s = time.perf_counter() - t0
    vllm_tokens = [list(o.outputs[0].token_ids) for o in outs]
    same = sum(a == b for a, b in zip(hf_tokens, vllm_tokens))
    summary.update({"vllm_tokens_per_s": n_prompts * new_tokens / vllm_s, "vllm_over_hf": hf_s / vllm_s,
                    "greedy_identical_fraction": same / n_prompts})
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sft-steps", type=int, default=40)
    p.add_argument("--dpo-steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=128)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from train_throughput import gpu_model_dir

    tmp = Path(tempfile.mkdtemp(prefix="llmops-gpu-check-"))
    summary: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                     "torch": torch.__version__, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        import transformers

        summary["transformers"] = transformers.__version__
        model_dir = str(gpu_model_dir(tmp))
    except Exception as exc:  # noqa: BLE001 - nothing else can run
        summary["error"] = f"model build failed: {exc!r}"
        print(json.dumps(summary))
        return 1
    sections = {
        "sft_full_bf16": lambda: sft(model_dir, tmp, False, args.sft_steps, args.batch_size, args.max_length),
        "sft_lora_bf16": lambda: sft(model_dir, tmp, True, args.sft_steps, args.batch_size, args.max_length),
        "dpo_lora_bf16": lambda: dpo(model_dir, tmp, args.dpo_steps),
        "generation": lambda: generation(model_dir, args.prompts, args.new_tokens),
    }
    for name, fn in sections.items():
        t0 = time.perf_counter()
        try:
            summary[name] = fn()
        except Exception as exc:  # noqa: BLE001 - report and go on
            summary[name] = {"error": repr(exc), "trace": traceback.format_exc()[-1500:]}
        summary[name]["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
