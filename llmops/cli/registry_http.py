"""`llmops registry serve` and the `--registry-url` side of the registry commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

URL_ENV = "LLMOPS_REGISTRY_URL"


def add_url_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry-url", metavar="URL", default=os.environ.get(URL_ENV),
                   help=f"talk to `llmops registry serve` at URL instead of the database (default: ${URL_ENV})")


def client(args: argparse.Namespace):
    """A RegistryClient when --registry-url / $LLMOPS_REGISTRY_URL is set, else None."""
    url = getattr(args, "registry_url", None)
    if not url:
        return None
    from llmops.cli.registry_auth import API_KEY_ENV
    from llmops.registry.client import RegistryClient

    return RegistryClient(url, os.environ.get(API_KEY_ENV, "").strip())


def write_or_print(text: str, out: str | None) -> int:
    """Write `text` to the file `out`, or print it."""
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {out}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _print(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)
    return 0


def remote_list(c, args) -> int:
    if args.name:
        rows = c.list_versions(args.name)
        return _print(args, rows, "\n".join(f"{v['version']:>5}  {v['sha256'][:12]}  {','.join(v['aliases']) or '-'}  "
                                            f"{v['created_by']}" for v in rows))
    rows = c.list_models()
    return _print(args, rows, "\n".join(f"{m['name']:<32} {m['n_versions']:>4} versions  " + " ".join(
        f"{a}={v}" for a, v in m["aliases"].items()) for m in rows) or "(no registered models)")


def remote_show(c, args, name: str, alias: str | None, version: int | None) -> int:
    data = c.show(name, str(version) if version is not None else f"@{alias or 'latest'}" if alias else "@latest")
    return _print(args, data, f"registry:{data['name']}/{data['version']}  aliases: {', '.join(data['aliases']) or '-'}\n"
                              f"sha256:   {data['sha256']}  ({data['n_bytes']} bytes)\n"
                              f"created:  {data['created_at']} by {data['created_by']}")


def remote_card(c, args, name: str, alias: str | None, version: int | None) -> int:
    ref = str(version) if version is not None else f"@{alias}" if alias else "@latest"
    return write_or_print(c.card(name, ref, html=args.html), args.out)


def remote_register(c, args, lineage: dict | None, tags: dict[str, str]) -> int:
    mv = c.register(args.name, args.artifact_dir, lineage=lineage, tags=tags, description=args.description)
    return _print(args, mv, f"registered registry:{mv['name']}/{mv['version']} ({mv['n_bytes']} bytes, "
                            f"sha256 {mv['sha256'][:12]}) at {args.registry_url}")


def remote_promote(c, args, name: str, version: int) -> int:
    from llmops.registry.entities import PromotionRefused

    if args.gates:
        print("error: over --registry-url the gates come from the server's alias policies; drop --gates",
              file=sys.stderr)
        return 2
    try:
        rec = c.promote(name, version, args.alias, reason=args.reason, force=args.force)
    except PromotionRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _print(args, rec, f"{name}/{version} is now `{args.alias}` ({rec['decision']})")


def remote_alias(c, args) -> int:
    if args.history or not args.alias:
        events = [e for e in c.alias_history(args.name) if not args.alias or e["alias"] == args.alias]
        return _print(args, events, "\n".join(f"{e['at']}  {e['alias']:<12} {e['from_version']!s:>4} -> "
                                              f"{e['to_version']!s:<4} {e['actor']}  {e['reason']}" for e in events)
                      or "(no alias moves)")
    ev = c.set_alias(args.name, args.alias, None if args.delete else args.version, reason=args.reason,
                     force=args.force)
    return _print(args, ev, f"{args.name}@{args.alias}: {ev['from_version']} -> {ev['to_version']}")


def remote_lineage(c, args) -> int:
    return write_or_print(c.lineage(args.name, args.format), args.out)


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the registry over HTTP (API-key auth) so machines share one registry")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8020)
    p.add_argument("--db", metavar="URL", help="database URL (PostgreSQL to share; default: $LLMOPS_DATABASE_URL)")
    p.add_argument("--max-upload-bytes", type=int, default=64 << 30)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)


def build_app(db: str | None, max_upload_bytes: int = 64 << 30):
    """The registry service over `db`, authenticating with the feedback store's API keys."""
    from llmops.cli.registry_auth import key_authenticator
    from llmops.eval.api import bootstrap_compare
    from llmops.registry import api
    from llmops.registry.service import create_app

    return create_app(api.get_store(db), key_authenticator(db), compare=bootstrap_compare,
                      max_upload_bytes=max_upload_bytes)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(build_app(args.db, args.max_upload_bytes), host=args.host, port=args.port, log_level=args.log_level)
    return 0
