"""`llmops ui`: the web UI over runs, evaluations, the registry, feedback and monitoring."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ui",
        help="serve the web UI (runs, compare, evaluations, registry, feedback, monitoring)",
        description="Server-rendered pages over the project database and run folders; log in with an API key "
                    "from `llmops feedback keys create` (raters read, admins act).",
    )
    p.add_argument("--db", help="database URL (default: $LLMOPS_DATABASE_URL, else SQLite at $LLMOPS_HOME/llmops.db)")
    p.add_argument("--runs-dir", action="append", metavar="DIR",
                   help="folder of training run directories to index on start (repeatable; default: runs)")
    p.add_argument("--evals-dir", action="append", metavar="DIR",
                   help="folder of `llmops eval run` / `llmops bench` outputs (repeatable; default: the --runs-dir)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--migrate", action="store_true",
                   help="apply pending migrations first (advisory-locked); without it a database behind the code "
                        "is refused")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="Host header values to answer (repeatable; default: localhost, 127.0.0.1; '*' for any)")
    p.add_argument("--no-scan", action="store_true", help="do not rescan --runs-dir on start")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    import os
    import secrets
    from pathlib import Path

    import uvicorn

    from llmops.db.migrate import prepare
    from llmops.errors import UserError
    from llmops.settings import database_url

    url = database_url(args.db)
    prepare(url, args.migrate)
    runs = args.runs_dir or ["runs"]
    for flag, dirs in (("--runs-dir", args.runs_dir or []), ("--evals-dir", args.evals_dir or [])):
        missing = [d for d in dirs if not Path(d).is_dir()]
        if missing:
            raise UserError(f"{flag} {missing[0]!r} is not a directory")
    os.environ["LLMOPS_DATABASE_URL"] = url
    os.environ["LLMOPS_UI_RUNS_DIRS"] = os.pathsep.join(str(Path(d).resolve()) for d in runs)
    os.environ["LLMOPS_UI_EVALS_DIRS"] = os.pathsep.join(str(Path(d).resolve()) for d in args.evals_dir or [])
    os.environ["LLMOPS_UI_SCAN"] = "0" if args.no_scan else "1"
    # One secret for all workers of this server; set LLMOPS_UI_SECRET to keep sessions across restarts.
    os.environ.setdefault("LLMOPS_UI_SECRET", secrets.token_urlsafe(32))
    if args.allowed_host:
        os.environ["LLMOPS_UI_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    print(f"llmops ui on http://{args.host}:{args.port}/ (log in with an API key)", flush=True)
    uvicorn.run("llmops.ui.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level)
    return 0
