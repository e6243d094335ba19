"""Training throughput: the llmops engine vs transformers.Trainer vs TRL's SFTTrainer.

Same model, same tokenised examples (a length-skewed set: most examples short, a few
long), same micro-batch, precision and optimizer *implementation* (for-loop AdamW on CPU, fused
on CUDA, on both sides), the same number of epochs each, every variant in its own fresh
process (so peak RSS is its own). Reported: supervised (label != -100) tokens per second
of the training loop, the median over ``--repeat`` (>= 3) interleaved runs, and peak RSS
(CPU) or peak allocated GPU memory. Like is compared with like:

- ``ours-padded`` / ``trainer``    — padded batches on both sides, target >= 1.0x;
- ``ours-packed`` / ``trl-packed`` — packing on both sides (TRL's best-fit packing with
  its padding-free position ids), target >= 1.0x;
- ``ours-packed`` / ``trainer``    — what packing buys over a padded Trainer loop.

A run shorter than 30 s is flagged: raise ``--epochs`` or ``--examples``.

  python benchmarks/train_throughput.py                 # CPU, builtin:tiny (~1 min idle)
  python benchmarks/train_throughput.py --gpu           # randomly initialised ~0.5B Llama, bf16, MFU

``--gpu`` builds a ~0.5B-parameter Llama configuration from scratch (nothing is
downloaded) and also reports model-FLOPs utilisation over all non-padding tokens
(`llmops.train.flops`: 6·N_body + LM head + causal attention per sample).
On a shared machine the absolute numbers move; the ratios, measured side by side in
one invocation, are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = "the a value list file read open return parse sort string path bytes object error key item".split()


# ---------------------------------------------------------------- shared inputs


def skewed_records(n: int, long_tokens: int, seed: int = 0) -> list[dict[str, str]]:
    """90% short examples, 10% long ones: the shape that makes padding expensive."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        words = rng.randint(long_tokens // 2, long_tokens) if rng.random() < 0.1 else rng.randint(4, max(8, long_tokens // 12))
        prompt = " ".join(rng.choice(WORDS) for _ in range(words))
        completion = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, max(3, words // 3))))
        records.append({"prompt": prompt, "completion": completion})
    return records


def gpu_model_dir(root: Path) -> Path:
    """A randomly initialised ~0.5B Llama saved with the built-in tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llmops.models.refs import resolve_model

    path = root / "llama-0.5b-random"
    if (path / "config.json").exists():
        return path
    tok = AutoTokenizer.from_pretrained(str(resolve_model("builtin:tiny")))
    config = LlamaConfig(
        vocab_size=32768, hidden_size=1536, intermediate_size=4096, num_hidden_layers=16,
        num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=4096,
        tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def examples_for(model_dir: str, records: list[dict], max_length: int) -> tuple[list[dict], object]:
    from llmops.data import build_sft_examples
    from llmops.models.loading import load_tokenizer

    tok = load_tokenizer(model_dir)
    examples, _ = build_sft_examples(records, tok, max_length)
    return examples, tok


def non_embedding_params(model) -> int:
    emb = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" in n or "lm_head" in n)
    return sum(p.numel() for p in model.parameters()) - emb


# ---------------------------------------------------------------- workers (one per process)


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_ours(args, data_file: Path, model_dir: str, packing: bool) -> dict:
    import yaml

    from llmops.config import load_recipe
    from llmops.train import run

    out = Path(args.tmp) / args.variant
    recipe = {
        "recipe": "sft",
        "model": {"base": model_dir, "dtype": "float32"},
        "data": {"train": str(data_file), "max_length": args.max_length, "packing": packing,
                 "validation_split": 0.0, "shuffle": True, "format": "prompt_completion"},
        "train": {"max_steps": args.steps_padded if not packing else args.steps_packed, "batch_size": args.batch_size,
                  "lr": 1e-4, "lr_scheduler": "constant", "log_every": 1000, "max_grad_norm": 1.0,
                  "mixed_precision": args.precision, "optimizer_impl": optimizer_impl()},
        "output": {"dir": str(out)},
    }
    path = Path(args.tmp) / f"recipe-{args.variant}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run(load_recipe(path))
    manifest = result.manifest
    return {"supervised_tokens": manifest["tokens_total"], "seconds": manifest["train_time_s"],
            "steps": result.steps, "params": None}


def optimizer_impl() -> str:
    """One AdamW implementation for every variant: fused on CUDA; on CPU torch's default
    for-loop kernel, which is what Trainer's ``adamw_torch`` runs there."""
    import torch

    return "fused" if torch.cuda.is_available() else "for_loop"


def worker_hf(args, examples: list[dict], tok, model_dir: str, use_trl: bool, packing: bool = False) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from llmops.data import SFTCollator

    class Clock(TrainerCallback):
        start = end = None

        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_train_end(self, *a, **k):
            self.end = time.perf_counter()

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    common = dict(
        output_dir=str(Path(args.tmp) / args.variant), per_device_train_batch_size=args.batch_size,
        # TRL packs with its own (best-fit) packer: run whole epochs rather than our row count
        max_steps=-1 if packing else args.steps_padded, num_train_epochs=args.epochs, learning_rate=1e-4,
        optim="adamw_torch_fused" if optimizer_impl() == "fused" else "adamw_torch", lr_scheduler_type="constant", max_grad_norm=1.0,
        logging_steps=1000, save_strategy="no", report_to=[], seed=42, dataloader_drop_last=True,
        bf16=args.precision == "bf16", use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
    )
    clock = Clock()
    if use_trl:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        dataset = Dataset.from_list([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples])
        trainer = SFTTrainer(model=model, args=SFTConfig(max_length=args.max_length, packing=packing, **common),
                             train_dataset=dataset, processing_class=tok, callbacks=[clock])
    else:
        trainer = Trainer(model=model, args=TrainingArguments(**common), train_dataset=examples,
                          data_collator=SFTCollator(tok.pad_token_id), callbacks=[clock])
    trainer.train()
    # whole epochs over a multiple of the batch size: every example equally often
    if not packing:
        assert len(examples) * args.epochs == args.steps_padded * args.batch_size
    # packed: the same epochs of the same examples (TRL's packer may fill rows differently)
    supervised = args.epochs * sum(sum(1 for x in e["labels"][1:] if x != -100) for e in examples)
    return {"supervised_tokens": supervised, "seconds": clock.end - clock.start,
            "steps": trainer.state.global_step, "params": non_embedding_params(model)}


def worker(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    data_file = Path(args.tmp) / "train.jsonl"
    records = [json.loads(line) for line in data_file.read_text().splitlines()]
    if args.variant.startswith("ours"):
        out = worker_ours(args, data_file, args.model_dir, packing=args.variant == "ours-packed")
    else:
        examples, tok = examples_for(args.model_dir, records, args.max_length)
        out = worker_hf(args, examples, tok, args.model_dir, use_trl=args.variant.startswith("trl"),
                        packing=args.variant == "trl-packed")
    out["peak_mem_mb"] = _peak_memory_mb()
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------- driver


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpu", action="store_true", help="random ~0.5B Llama in bf16 on the GPU, with MFU")
    p.add_argument("--examples", type=int, default=None, help="dataset size (default: 384 CPU, 2048 GPU)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch default)")
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak dense bf16 TFLOPS (auto for H100/H200/A100)")
    p.add_argument("--variants", default="ours-padded,trainer,ours-packed,trl-packed")
    p.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved; the median counts")
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (each run should last >= 30 s)")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    p.add_argument("--steps-padded", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps-packed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        worker(args)
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    args.examples = args.examples or (2048 if args.gpu else 384)
    args.batch_size = args.batch_size or (8 if args.gpu else 8)
    args.max_length = args.max_length or (2048 if args.gpu else 256)
    args.precision = "bf16" if args.gpu else "no"
    tmp = Path(tempfile.mkdtemp(prefix="llmops-bench-"))
    if args.gpu:
        model_dir = str(gpu_model_dir(tmp))
    else:
        from llmops.models.refs import resolve_model

        model_dir = str(resolve_model("builtin:tiny"))
    from llmops.data import pack_examples, tokenize_sft
    from llmops.models.loading import load_tokenizer

    # keep records that survive tokenisation, a multiple of the batch size: one epoch = every example once
    tok = load_tokenizer(model_dir)
    records = [r for r in skewed_records(args.examples, int(args.max_length * 0.8)) if tokenize_sft(r, tok, args.max_length)]
    records = records[: len(records) // args.batch_size * args.batch_size]
    (tmp / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    examples, _ = examples_for(model_dir, records, args.max_length)
    steps_padded = args.epochs * len(examples) // args.batch_size  # the same epochs for everyone
    steps_packed = args.epochs * len(pack_examples(examples, args.max_length)) // args.batch_size
    print(f"{len(examples)} examples, batch {args.batch_size}, max_length {args.max_length}, precision {args.precision}, "
          f"AdamW {'fused' if args.gpu else 'for-loop'}; {args.epochs} epoch(s) = "
          f"{steps_padded} padded / {steps_packed} packed steps")

    runs: dict[str, list[dict]] = {}
    for variant in args.variants.split(",") * args.repeat:
        if variant.startswith("trl"):
            try:
                import trl  # noqa: F401
            except ImportError:
                print("trl not installed: skipping SFTTrainer")
                continue
        shutil.rmtree(tmp / variant, ignore_errors=True)
        cmd = [sys.executable, __file__, "--variant", variant, "--tmp", str(tmp), "--model-dir", model_dir,
               "--precision", args.precision, "--steps-padded", str(steps_padded), "--steps-packed", str(steps_packed),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length), "--threads", str(args.threads),
               "--epochs", str(args.epochs)]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if done.returncode != 0 or line is None:
            print(f"{variant}: FAILED\n{done.stderr[-2000:]}")
            continue
        r = json.loads(line[len("RESULT "):])
        r["tokens_per_s"] = r["supervised_tokens"] / r["seconds"]
        runs.setdefault(variant, []).append(r)
        short = "  (< 30 s: raise --epochs)" if r["seconds"] < 30 else ""
        print(f"{variant:12s} {r['tokens_per_s']:10.0f} supervised tok/s  {r['seconds']:7.1f} s  "
              f"{r['steps']:4d} steps  peak mem {r['peak_mem_mb']:8.0f} MB{short}")

    import statistics

    results = {v: {**rs[0], "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs), "n": len(rs)}
               for v, rs in runs.items()}
    print("\nmedian supervised tokens/s (runs):")
    for name, r in results.items():
        print(f"  {name:12s} {r['tokens_per_s']:10.0f}  ({r['n']})")
    pairs = [("ours-padded", "trainer"), ("ours-packed", "trl-packed"), ("ours-packed", "trainer")]
    print("ratios of medians:")
    for a, b in pairs:
        if a in results and b in results:
            print(f"  {a} / {b}: {results[a]['tokens_per_s'] / results[b]['tokens_per_s']:.2f}x")
    base = results.get("trainer")
    if args.gpu:
        print("MFU: see benchmarks/gpu_check.sh (counts all non-pad tokens, llmops.train.flops)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
