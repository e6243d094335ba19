"""`llmops feedback serve|keys|export|import`: the human-feedback store from the command line."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "feedback",
        help="human-feedback store: serve the API and rater page, manage keys, export preferences",
        description="Collect ratings, comparisons and critiques over HTTP; export preference pairs for DPO/reward models.",
    )
    sub = p.add_subparsers(dest="feedback_command", metavar="SUBCOMMAND", required=True)
    db_help = "database URL (default: $LLMOPS_DATABASE_URL, else SQLite at $LLMOPS_HOME/llmops.db)"

    s = sub.add_parser("serve", help="run the feedback API and rater page (uvicorn)")
    s.add_argument("--db", help=db_help)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    s.add_argument("--log-level", default="warning")
    s.add_argument("--migrate", action="store_true",
                   help="apply pending migrations first (advisory-locked); without it a database behind the code "
                        "is refused")
    s.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="Host header values to answer (repeatable; default: localhost, 127.0.0.1; '*' for any)")
    s.add_argument("--rater-view", choices=["blind", "full"], default="blind",
                   help="blind (default): raters see prompt and responses only, shuffled per rater; full: also "
                        "model versions and metadata")
    s.add_argument("--no-admin-api", action="store_true", help="leave out key management and exports")
    s.set_defaults(func=serve)

    k = sub.add_parser("keys", help="create, list or revoke API keys")
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    kc = ksub.add_parser("create", help="create a key and print it once (only its hash is stored)")
    kc.add_argument("--role", required=True, choices=["admin", "service", "rater", "client"],
                    help="client: may only call a model server's generation endpoints")
    kc.add_argument("--name", help="rater identity the key's feedback is filed under (default: a fresh one)")
    kc.add_argument("--db", help=db_help)
    kc.set_defaults(func=keys_create)
    kl = ksub.add_parser("list", help="list keys (ids, roles, names; never secrets)")
    kl.add_argument("--db", help=db_help)
    kl.set_defaults(func=keys_list)
    kr = ksub.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("key_id")
    kr.add_argument("--db", help=db_help)
    kr.set_defaults(func=keys_revoke)

    from llmops.cli import feedback_export

    feedback_export.register(sub, db_help)  # every format, filter and output

    i = sub.add_parser("import", help="load items (prompt, context?, metadata?, responses) from JSONL")
    i.add_argument("path")
    i.add_argument("--db", help=db_help)
    i.set_defaults(func=import_items)

    from llmops.cli import feedback_projects

    feedback_projects.register(sub, db_help)  # projects create|list|progress, quality
    from llmops.cli import feedback_stats

    feedback_stats.register(sub, db_help)  # stats: the UI feedback page's summaries


def serve(args: argparse.Namespace) -> int:
    import os
    import tempfile

    import uvicorn

    from llmops.db.migrate import prepare
    from llmops.settings import database_url

    url = database_url(args.db)
    prepare(url, args.migrate)  # once, here, not racing in every worker
    os.environ["LLMOPS_DATABASE_URL"] = url
    os.environ["LLMOPS_FEEDBACK_RATER_VIEW"] = args.rater_view
    os.environ["LLMOPS_FEEDBACK_ADMIN_API"] = "0" if args.no_admin_api else "1"
    if args.allowed_host:
        os.environ["LLMOPS_FEEDBACK_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="llmops-prom-")
    uvicorn.run(
        "llmops.feedback.api.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )
    return 0


def _sessions(db: str | None, *, writes: bool):
    """Sessions after the schema check: never migrates an existing database (`llmops db upgrade` does);
    a write command may create the schema of an empty one (first key of a fresh install)."""
    from llmops.db import session_factory
    from llmops.db.migrate import prepare

    prepare(db, migrate=False, create_if_empty=writes)
    return session_factory(db)


def keys_create(args: argparse.Namespace) -> int:
    from llmops.feedback import auth

    with _sessions(args.db, writes=True)() as s, s.begin():
        new = auth.create_key(s, args.role, args.name)
    print(new.token)
    import sys

    print(f"created {new.role} key {new.key_id} for {new.name!r}; store it now, it is not shown again", file=sys.stderr)
    return 0


def keys_list(args: argparse.Namespace) -> int:
    from llmops.feedback import auth

    with _sessions(args.db, writes=False)() as s:
        rows = auth.list_keys(s)
        print(f"{'KEY_ID':14} {'ROLE':8} {'STATUS':8} {'CREATED':26} NAME")
        for k in rows:
            status = "revoked" if k.revoked_at else "active"
            print(f"{k.key_id:14} {k.role:8} {status:8} {k.created_at.isoformat()[:26]:26} {k.rater.name}")
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    from llmops.feedback import auth

    with _sessions(args.db, writes=True)() as s, s.begin():
        auth.revoke_key(s, args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def import_items(args: argparse.Namespace) -> int:
    from llmops.feedback.importer import import_items_jsonl

    n, ids = import_items_jsonl(args.path, args.db)
    print(f"imported {n} items (ids {ids[0]}..{ids[-1]})" if n else "no items in file")
    return 0
