"""`llmops eval score` (score existing outputs) and `llmops eval run` (evaluate a model on a suite)."""

from __future__ import annotations

import argparse


def _kv(text: str) -> tuple[str, object]:
    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got `{text}`")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def batch_size_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or `auto`, got `{text}`") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or `auto`, got `{text}`")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="score outputs or evaluate a model on a suite")
    sub = p.add_subparsers(dest="eval_command", metavar="SUBCOMMAND", required=True)

    s = sub.add_parser(
        "score",
        help="score a predictions file against reference files",
        description="Score predictions against references. Files are plain text (one segment per line) or "
        ".jsonl with a `text` field. Give --references once per reference stream (sacrebleu's orientation: "
        "file k holds the k-th reference of every segment).",
    )
    s.add_argument("--metric", required=True, help="bleu, chrf, chrf++, ter, rouge, exact_match, token_f1")
    s.add_argument("--predictions", required=True, metavar="FILE")
    s.add_argument("--references", required=True, action="append", metavar="FILE")
    s.add_argument(
        "-o", "--option", action="append", type=_kv, default=[], metavar="KEY=VALUE",
        help="metric option, e.g. tokenize=zh, lowercase=true, use_stemmer=true, split_sentences=true, normalize=squad",
    )
    s.add_argument("--ci", action="store_true", help="add a 95%% bootstrap confidence interval")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (with --ci)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=run_score)

    r = sub.add_parser(
        "run",
        help="evaluate a model on a suite and write results.json + samples.jsonl",
        description="Evaluate MODEL on SUITE. Raw outputs are cached under $LLMOPS_HOME/eval-cache by what "
        "decides them (model hash, rendered prompts, generation settings, backend and library versions, device, "
        "dtype, and the batch size outside fp32 greedy); metrics are always recomputed, so changing only the "
        "metric list does not run the model again.",
    )
    r.add_argument("--model", required=True, help="builtin:NAME, local dir, LoRA adapter dir, hub id or registry:NAME@ALIAS; "
                   "with --backend openai: the served model's name")
    r.add_argument("--suite", required=True, help="suite YAML, e.g. eval/docstring_summary.yaml")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--backend", default="hf", choices=["hf", "vllm", "openai"],
                   help="hf (default), vllm, or openai: any OpenAI-compatible server (llmops serve, vLLM, TGI, hosted)")
    r.add_argument("--base-url", default=None, help="openai backend: the API root, e.g. http://127.0.0.1:8000/v1")
    r.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="openai backend: name of the environment variable holding the API key (never the key itself)")
    r.add_argument("--concurrency", type=int, default=None, help="openai backend: requests in flight (default 8)")
    r.add_argument("--engine-option", action="append", type=_kv, default=[], metavar="KEY=VALUE", dest="engine_options",
                   help="vllm backend: an engine option on top of the suite's `engine:`, e.g. tensor_parallel_size=2")
    r.add_argument("--batch-size", type=batch_size_arg, default=None,
                   help="override the suite's batch size: N or `auto` (the largest that fits on a GPU; 64 on CPU)")
    r.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    r.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16", "auto"])
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    r.add_argument("--no-cache", action="store_true", help="ignore and do not write the result cache")
    r.add_argument(
        "-s", "--set", action="append", type=_kv, default=[], metavar="KEY=VALUE", dest="overrides",
        help="override a suite setting, e.g. -s max_new_tokens=32 -s temperature=0 -s repetition_penalty=1.1 "
        "-s stride=256 (perplexity)",
    )
    r.add_argument("--json", action="store_true", help="print results.json")
    r.add_argument("--exclude-contaminated", metavar="TRAIN_DATA", default=None,
                   help="skip suite items whose 8-grams overlap this training dataset (see `llmops data contamination`)")
    r.set_defaults(func=run_eval)

    from llmops.eval.reward_winrate import add_cli as add_winrate  # reward-model win rate (preference)

    add_winrate(sub)
    j = sub.add_parser(
        "judge-agreement",
        help="how often an LLM judge agrees with the human ratings and comparisons in the feedback store",
        description="Runs the judge (rubric mode) on rated responses and (pairwise, both orders) on ranked "
        "pairs from the feedback store; prints Spearman's rho against the raters' mean scores and the "
        "agreement rate on comparisons.",
    )
    j.add_argument("--judge-model", required=True, help="judge model reference (or served name with --backend openai)")
    j.add_argument("--backend", default="hf", choices=["hf", "vllm", "openai"])
    j.add_argument("--base-url", default=None)
    j.add_argument("--api-key-env", default=None, metavar="VAR")
    j.add_argument("--rubric", default=None, help="rubric text (default: helpfulness, relevance, accuracy, detail)")
    j.add_argument("--db", default=None, help="database URL (default: LLMOPS_DATABASE_URL or the embedded SQLite)")
    j.add_argument("--limit", type=int, default=200, help="newest N rated responses and N ranked pairs")
    j.add_argument("--json", action="store_true")
    j.set_defaults(func=run_judge_agreement)


def run_score(args: argparse.Namespace) -> int:
    import json

    from llmops.eval.scoring import format_text, load_pairs, score_texts

    preds, refs = load_pairs(args.predictions, args.references)
    result = score_texts(args.metric, preds, refs, dict(args.option), ci=args.ci, seed=args.seed)
    print(json.dumps(result, indent=1, ensure_ascii=False) if args.json else format_text(result))
    return 0


def run_judge_agreement(args: argparse.Namespace) -> int:
    import json

    from llmops.eval.judge import DEFAULT_RUBRIC, JudgeConfig
    from llmops.eval.judge_agreement import judge_agreement
    from llmops.settings import database_url

    config = JudgeConfig(model=args.judge_model, backend=args.backend, base_url=args.base_url,
                         api_key_env=args.api_key_env, rubric=args.rubric or DEFAULT_RUBRIC)
    report = judge_agreement(config, database_url(args.db), limit=args.limit)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for part in ("ratings", "comparisons"):
            if part in report:
                print(f"{part}: " + ", ".join(f"{k}={v}" for k, v in report[part].items()))
        if "note" in report:
            print(report["note"])
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import json

    from llmops.eval.api import evaluate
    from llmops.eval.report import summary_lines

    overrides = dict(args.overrides)
    for key in ("batch_size", "limit", "dtype", "device", "base_url", "api_key_env", "concurrency"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.engine_options:
        overrides["engine_options"] = dict(args.engine_options)
    if args.exclude_contaminated:
        overrides["exclude_contaminated"] = args.exclude_contaminated
    results = evaluate(args.model, args.suite, args.out, backend=args.backend, use_cache=not args.no_cache, **overrides)
    if results:  # empty on the other ranks of a data-parallel launch: rank 0 reports
        print(json.dumps(results, indent=1) if args.json else "\n".join(summary_lines(results)))
    return 0
