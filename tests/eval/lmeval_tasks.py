"""The same local tasks for llmops and lm-evaluation-harness (the side-by-side parity
test and benchmarks/eval_vs_lmeval.py).

Data files are written once as JSONL; prompts are rendered here into a plain field so that
neither side's template engine (str.format, Jinja) is under test — only the model calls,
the tokenisation conventions and the metrics are. Three tasks:

- ``gen``: docstring summary, chat template, greedy, 48 new tokens (generate_until; BLEU, chrF, TER)
- ``mc``: which function a docstring describes, 4 choices (multiple_choice; acc, acc_norm, acc_bytes)
- ``ppl``: held-out docstrings scored with a 64-token window (loglikelihood_rolling; word/byte
  perplexity, bits per byte)
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL = "builtin:tiny"
GEN_MAX_NEW_TOKENS = 48
PPL_WINDOW = 64
LMEVAL_METRICS = {
    "gen": ("bleu", "chrf", "ter"),
    "mc": ("acc", "acc_norm", "acc_bytes"),
    "ppl": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
}
# lm-eval metric name -> llmops metric name
SAME_METRIC = {"bleu": "bleu", "chrf": "chrf", "ter": "ter", "acc": "accuracy", "acc_norm": "accuracy_norm",
               "acc_bytes": "accuracy_bytes", "word_perplexity": "word_perplexity",
               "byte_perplexity": "byte_perplexity", "bits_per_byte": "bits_per_byte"}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_tasks(
    out: Path, n_gen: int = 200, n_mc: int = 100, n_ppl: int = 50, gen_split: str = "test", gen_metrics: tuple = ("bleu", "chrf", "ter"),
) -> dict[str, dict[str, Path]]:
    """Write data, lm-eval task YAMLs (out/lmeval/) and llmops suites (out/llmops/).

    Returns {task: {"data": path, "suite": llmops suite path, "lmeval_task": task name}}."""
    from llmops.data import load_records
    from llmops.eval.choice_data import docstring_choice_records

    out.mkdir(parents=True, exist_ok=True)
    (out / "lmeval").mkdir(exist_ok=True)
    (out / "llmops").mkdir(exist_ok=True)
    docs = load_records("builtin:docstrings", split="test")
    gen_docs = load_records("builtin:docstrings", split=gen_split)
    gen = _jsonl(out / "gen.jsonl", [{"prompt": r["prompt"], "completion": r["completion"]} for r in gen_docs[:n_gen]])
    mc = _jsonl(out / "mc.jsonl", [
        {"text": f"Docstring: {r['question']}\nFunction name:", "choices": r["choices"], "answer": r["answer"]}
        for r in docstring_choice_records("test", seed=0)[:n_mc]
    ])
    ppl = _jsonl(out / "ppl.jsonl", [{"text": r["prompt"]} for r in docs[:n_ppl]])

    common = lambda name, data: {"task": f"llmops_{name}", "dataset_path": "json",  # noqa: E731
                                 "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test"}
    lmeval = {
        "gen": {**common("gen", gen), "output_type": "generate_until", "doc_to_text": "prompt",
                "doc_to_target": "completion",
                "generation_kwargs": {"until": [], "max_gen_toks": GEN_MAX_NEW_TOKENS, "do_sample": False},
                "metric_list": [{"metric": m, "aggregation": m, "higher_is_better": m != "ter"} for m in LMEVAL_METRICS["gen"]]},
        "mc": {**common("mc", mc), "output_type": "multiple_choice", "doc_to_text": "text", "doc_to_choice": "choices",
               "doc_to_target": "answer", "target_delimiter": " ",
               "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in LMEVAL_METRICS["mc"]]},
        "ppl": {**common("ppl", ppl), "output_type": "loglikelihood_rolling", "doc_to_text": "", "doc_to_target": "text",
                "metric_list": [{"metric": m} for m in LMEVAL_METRICS["ppl"]]},
    }
    suites = {
        "gen": {"name": "llmops_gen", "task": "generate", "dataset": {"path": str(gen)},
                "prompt": {"messages": [{"role": "user", "content": "{prompt}"}]}, "references": "completion",
                "generation": {"max_new_tokens": GEN_MAX_NEW_TOKENS, "batch_size": "auto"},
                "metrics": list(gen_metrics)},
        "mc": {"name": "llmops_mc", "task": "multiple_choice", "dataset": {"path": str(mc)},
               "prompt": {"template": "{text}"}, "choices": "choices", "answer": "answer", "choice_prefix": " ",
               "metrics": ["accuracy"]},
        "ppl": {"name": "llmops_ppl", "task": "perplexity", "dataset": {"path": str(ppl)}, "text": "text",
                "max_length": PPL_WINDOW, "metrics": ["perplexity"]},
    }
    tasks = {}
    for name in ("gen", "mc", "ppl"):
        (out / "lmeval" / f"llmops_{name}.yaml").write_text(json.dumps(lmeval[name], indent=1))  # JSON is YAML
        suite = out / "llmops" / f"{name}.yaml"
        suite.write_text(json.dumps(suites[name], indent=1))
        tasks[name] = {"data": {"gen": gen, "mc": mc, "ppl": ppl}[name], "suite": suite, "lmeval_task": f"llmops_{name}"}
    return tasks


def lmeval_model_args(model_path: Path, task: str, device: bool = True) -> str:
    """lm-eval's hf model arguments matching llmops's window for the task (the model's
    1024 positions less two for generation; the perplexity window otherwise)."""
    max_length = PPL_WINDOW if task == "ppl" else 1022
    return f"pretrained={model_path},dtype=float32,max_length={max_length}" + (",device=cpu" if device else "")


def run_lmeval(task_dir: Path, model_path: Path, task: str) -> dict:
    """Run one task with lm-eval's hf backend in this process; returns {metrics, samples}."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir / "lmeval"), include_defaults=False)
    res = lm_eval.simple_evaluate(
        model="hf", model_args=lmeval_model_args(model_path, task), tasks=[f"llmops_{task}"], batch_size=32,
        task_manager=manager, log_samples=True, apply_chat_template=task == "gen", bootstrap_iters=0,
    )
    name = f"llmops_{task}"
    metrics = {m: res["results"][name][f"{m},none"] for m in LMEVAL_METRICS[task]}
    samples = sorted(res["samples"][name], key=lambda s: s["doc_id"])
    return {"metrics": metrics, "samples": samples}
