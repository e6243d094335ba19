"""`llmops serve --model REF`: the OpenAI-compatible endpoint, with the feedback API on the same port."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible API; every answer is recorded for feedback",
        description=(
            "POST /v1/completions and /v1/chat/completions (concurrent requests are batched), GET /v1/models, "
            "/healthz, /metrics, and the feedback API and rater page on the same port. With "
            "--model registry:NAME@ALIAS, a promotion is picked up without a restart."
        ),
    )
    p.add_argument("--model", required=True, help="builtin:NAME, registry:NAME@ALIAS, registry:NAME/VERSION, a directory or a hub id")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", help="database URL of the feedback store and registry "
                                "(default: $LLMOPS_DATABASE_URL, else SQLite at $LLMOPS_HOME/llmops.db)")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm"], help="inference engine (vllm: the `vllm` extra)")
    p.add_argument("--max-batch-size", type=int, default=8, help="sequences per backend call (n choices count each)")
    p.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits for more requests")
    p.add_argument("--poll-interval", type=float, default=5.0,
                   help="seconds between checks of a registry alias (0: never)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"])
    p.add_argument("--device", help="torch device for the hf backend (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=int, help="torch intra-op threads of the generation worker (default: torch's)")
    p.add_argument("--default-max-tokens", type=int, default=256, help="max_tokens when a request gives none")
    p.add_argument("--seed", type=int, default=0, help="seeds sampling calls of requests that give no seed")
    p.add_argument("--request-log", metavar="FILE.jsonl",
                   help="append one JSON line per generation request (prompt, status, version): the input of "
                        "`llmops monitor drift --current` and of error_rate alert rules")
    p.add_argument("--no-feedback-api", action="store_true",
                   help="do not mount the feedback API on this port (generations are still recorded)")
    p.add_argument("--log-level", default="info")
    p.add_argument("--migrate", action="store_true",
                   help="apply pending database migrations first (advisory-locked); without it a database behind "
                        "the code is refused")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="Host header values to answer (repeatable; default: localhost, 127.0.0.1; '*' for any)")
    p.add_argument("--rate-limit", type=float, default=10.0, metavar="PER_S",
                   help="generation requests per second per API key, sustained (0: no limit)")
    p.add_argument("--rate-burst", type=int, default=20, help="requests one key may send at once")
    p.add_argument("--max-tokens-cap", type=int, default=4096, help="largest max_tokens a request may ask for")
    p.add_argument("--enable-admin-api", action="store_true",
                   help="also expose key management and exports on this port (default: only on `llmops feedback "
                        "serve`)")
    p.add_argument("--feedback-project", metavar="NAME",
                   help="put every recorded generation into this rating project (it must exist); by default the "
                        "projects' routing rules decide, and without a match items reach no rater queue")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from llmops.errors import UserError
    from llmops.serve.app import create_app

    for name in ("max_batch_size", "default_max_tokens", "threads", "max_tokens_cap", "rate_burst"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_wait_ms < 0 or args.poll_interval < 0 or args.rate_limit < 0:
        raise UserError("--max-wait-ms, --poll-interval and --rate-limit must not be negative")
    app = create_app(
        args.model, db_url=args.db, backend=args.backend, max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms, poll_interval_s=args.poll_interval, dtype=args.dtype, device=args.device,
        default_max_tokens=args.default_max_tokens, seed=args.seed, torch_threads=args.threads,
        request_log=args.request_log,
        feedback_api=not args.no_feedback_api,
        migrate=args.migrate,
        allowed_hosts=args.allowed_host,
        rate_limit_per_s=args.rate_limit or None,
        rate_burst=args.rate_burst,
        max_tokens_cap=args.max_tokens_cap,
        admin_api=args.enable_admin_api,
        feedback_project=args.feedback_project,
    )
    # One process: the batch worker owns the model (more workers would load it once each).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=30)
    return 0
