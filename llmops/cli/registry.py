"""`llmops registry ...`: list, show, card, register, promote, alias, policy, audit, lineage, diff,
attach-eval, tag, delete, serve.

Commands that change the registry act as the principal of ``$LLMOPS_API_KEY`` (an API key
of the feedback store, see `llmops.cli.registry_auth`); nothing is self-declared."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from llmops.cli.registry_http import add_serve, add_url_option, client, write_or_print

_SPEC_RE = re.compile(r"^(?:registry:)?(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?$")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="database URL (default: $LLMOPS_DATABASE_URL or the embedded SQLite)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(subparsers: argparse._SubParsersAction) -> None:
    reg = subparsers.add_parser("registry", help="model registry: versions, aliases, gated promotion, lineage",
                                description="Versions with lineage and evaluations; aliases with an audit log.")
    sub = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("list", help="registered models, or the versions of one")
    p.add_argument("name", nargs="?")
    p.add_argument("--limit", type=int, metavar="N", help="one page of N rows (versions newest first); the next "
                   "page's cursor is printed on stderr")
    p.add_argument("--after", metavar="CURSOR", help="the page after this cursor (a model name or a version)")
    _common(p)
    add_url_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one version: artifact, lineage, tags, evaluations, aliases")
    p.add_argument("spec", help="NAME, NAME/VERSION or NAME@ALIAS")
    p.add_argument("--verify", action="store_true", help="re-hash the stored artifact")
    _common(p)
    add_url_option(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("register", help="copy a model directory into the registry as the next version")
    p.add_argument("name")
    p.add_argument("artifact_dir")
    p.add_argument("--lineage", metavar="FILE", help="JSON file with lineage keys")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--description", default="")
    _common(p)
    add_url_option(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("attach-eval", help="attach an evaluation result directory to a version")
    p.add_argument("spec", help="NAME/VERSION or NAME@ALIAS")
    p.add_argument("results_dir")
    p.add_argument("--suite", help="suite name (default: from results.json)")
    _common(p)
    add_url_option(p)
    p.set_defaults(func=cmd_attach_eval)

    p = sub.add_parser("tag", help="set (KEY=VALUE) or remove (KEY=) tags of a version (audited)")
    p.add_argument("spec")
    p.add_argument("tags", nargs="+", metavar="KEY=VALUE")
    p.add_argument("--reason", default="")
    _common(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("delete", help="delete a version (admins; audited; its number is never reused)")
    p.add_argument("spec", help="NAME/VERSION")
    p.add_argument("--reason", default="")
    _common(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("promote", help="move an alias to a version if its gates pass")
    p.add_argument("spec", help="NAME/VERSION")
    p.add_argument("--to", required=True, dest="alias", help="target alias, e.g. production")
    p.add_argument("--gates", metavar="FILE",
                   help="gates YAML for an alias without a stored policy (e.g. recipes/gates/production.yaml)")
    p.add_argument("--reason", default="")
    p.add_argument("--force", action="store_true", help="skip failing gates (admin keys only; needs --reason; audited)")
    _common(p)
    add_url_option(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("alias", help="set, remove or show the history of an alias (no gates; not on protected aliases)")
    p.add_argument("name")
    p.add_argument("alias", nargs="?")
    p.add_argument("version", nargs="?", type=int)
    p.add_argument("--delete", action="store_true")
    p.add_argument("--history", action="store_true", help="print the audit log")
    p.add_argument("--force", action="store_true", help="move a protected alias (admin keys only; needs --reason)")
    p.add_argument("--reason", default="")
    _common(p)
    add_url_option(p)
    p.set_defaults(func=cmd_alias)

    p = sub.add_parser("card", help="the model card of a version (Hugging Face README.md format)")
    p.add_argument("spec", help="NAME, NAME/VERSION or NAME@ALIAS")
    p.add_argument("--html", action="store_true", help="a self-contained HTML page instead of Markdown")
    p.add_argument("--out", metavar="FILE")
    p.add_argument("--db", metavar="URL")
    add_url_option(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("policy", help="alias policies: which aliases are protected and which gates guard them")
    p.add_argument("action", choices=["set", "list"])
    p.add_argument("name", nargs="?", help="model name, or '*' for every model")
    p.add_argument("alias", nargs="?")
    p.add_argument("--gates", metavar="FILE", help="gates YAML holding this alias's rules")
    p.add_argument("--unprotected", action="store_true", help="gates guard promotions, but `alias` may move it")
    p.add_argument("--reason", default="")
    _common(p)
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("audit", help="the audit log: tag changes, deletions, forced moves, policy changes")
    p.add_argument("name", nargs="?")
    _common(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("lineage", help="lineage graph as Mermaid, DOT or self-contained HTML")
    p.add_argument("name")
    p.add_argument("--format", choices=["mermaid", "dot", "html"], default="mermaid")
    p.add_argument("--out", metavar="FILE")
    p.add_argument("--db", metavar="URL")
    add_url_option(p)
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("diff", help="compare two versions: lineage, tags, metrics, files")
    p.add_argument("name")
    p.add_argument("a", help="VERSION or @ALIAS")
    p.add_argument("b", help="VERSION or @ALIAS")
    _common(p)
    p.set_defaults(func=cmd_diff)

    add_serve(sub)


def _parse_spec(spec: str, need_version: bool = False) -> tuple[str, str | None, int | None]:
    from llmops.errors import UserError

    m = _SPEC_RE.match(spec)
    if not m:
        raise UserError(f"bad model spec `{spec}`: use NAME, NAME/VERSION or NAME@ALIAS")
    version = int(m["version"]) if m["version"] else None
    if need_version and version is None:
        raise UserError(f"`{spec}` must name a version: NAME/VERSION")
    return m["name"], m["alias"], version


def _version_of(api, name: str, token: str, db: str | None) -> int:
    token = token.strip()
    if token.isdigit():
        return int(token)
    return api.get_version(name, alias=token.lstrip("@"), db_url=db).version


def _kv(items: list[str]) -> dict[str, str | None]:
    from llmops.errors import UserError

    out: dict[str, str | None] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"expected KEY=VALUE, got `{item}`")
        k, v = item.split("=", 1)
        out[k.strip()] = v if v != "" else None
    return out


def _principal(args: argparse.Namespace):
    from llmops.cli.registry_auth import cli_principal

    return cli_principal(args.db)


def _authorized(args: argparse.Namespace, action: str):
    from llmops.registry.governance import authorize

    return authorize(_principal(args), action)


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if args.json else text)
    return 0


def _pages(fetch, limit: int | None, after):
    """All rows (every page, in order) or, with `limit`, one page and its next cursor."""
    if limit is not None:
        page = fetch(limit, after)
        return page.items, page.next_cursor
    items, cursor = [], after
    while True:
        page = fetch(500, cursor)
        items += page.items
        if page.next_cursor is None:
            return items, None
        cursor = page.next_cursor


def cmd_list(args: argparse.Namespace) -> int:
    from llmops.cli import registry_http
    from llmops.errors import UserError
    from llmops.registry import api, browse

    if c := client(args):
        return registry_http.remote_list(c, args)
    store = api.get_store(args.db)
    if args.name:
        if args.after is not None and not str(args.after).isdigit():
            raise UserError(f"--after {args.after}: a version list's cursor is a version number")
        before = int(args.after) if args.after is not None else None
        versions, cursor = _pages(lambda n, c: browse.versions_page(store, args.name, n, c), args.limit, before)
        if args.limit is None:
            versions.reverse()  # the whole list reads oldest first, as it always did
        lines = [f"{v.version:>5}  {v.created_at:%Y-%m-%d %H:%M}  {v.sha256[:12]}  {','.join(v.aliases) or '-':<20} "
                 f"{v.created_by}" for v in versions]
        _cursor_hint(cursor)
        return _emit(args, [v.to_dict() for v in versions], "\n".join(["  ver  created           sha256        aliases"
                                                                        "              by"] + lines))
    models, cursor = _pages(lambda n, c: browse.models_page(store, n, c), args.limit, args.after)
    lines = [f"{m.name:<32} {m.n_versions:>4} versions  latest {m.latest_version or '-'}  "
             + " ".join(f"{a}={v}" for a, v in m.aliases.items()) for m in models]
    _cursor_hint(cursor)
    return _emit(args, [m.to_dict() for m in models], "\n".join(lines) or "(no registered models)")


def _cursor_hint(cursor) -> None:
    if cursor is not None:
        print(f"more: --after {cursor}", file=sys.stderr)


def cmd_show(args: argparse.Namespace) -> int:
    from llmops.registry import api

    name, alias, version = _parse_spec(args.spec)
    if c := client(args):
        from llmops.cli.registry_http import remote_show

        return remote_show(c, args, name, alias, version)
    from llmops.registry.browse import version_detail

    store = api.get_store(args.db)
    detail = version_detail(store, name, version=version, alias=alias)
    mv, evals = detail["version"], detail["evals"]
    data = mv.to_dict() | {"evals": [e.to_dict() for e in evals]}
    if args.verify:
        data["verified"] = store.artifacts.verify(mv.artifact_uri, mv.sha256)
    text = [f"{mv.ref}  aliases: {', '.join(mv.aliases) or '-'}", f"artifact: {mv.artifact_path}",
            f"sha256:   {mv.sha256}  ({mv.n_bytes} bytes)", f"created:  {mv.created_at} by {mv.created_by}",
            f"tags:     {json.dumps(mv.tags)}", "lineage:"]
    text += [f"  {k}: {json.dumps(v, default=str)[:200]}" for k, v in mv.lineage.items()]
    for e in evals:
        text.append(f"eval {e.suite}: " + ", ".join(f"{k}={v:.4g}" for k, v in e.scores().items()))
    if args.verify:
        text.append(f"verified: {data['verified']}")
    _emit(args, data, "\n".join(text))
    return 0 if data.get("verified", True) else 1


def cmd_register(args: argparse.Namespace) -> int:
    from llmops.errors import UserError
    from llmops.registry import api

    lineage = None
    if args.lineage:
        try:
            lineage = json.loads(open(args.lineage).read())
        except (OSError, ValueError) as exc:
            raise UserError(f"--lineage {args.lineage}: {exc}") from None
    tags = {k: v or "" for k, v in _kv(args.tag).items()}
    if c := client(args):
        from llmops.cli.registry_http import remote_register

        return remote_register(c, args, lineage, tags)
    who = _authorized(args, "register")
    mv = api.register_version(args.name, args.artifact_dir, lineage=lineage, tags=tags, db_url=args.db,
                              description=args.description, actor=who.id)
    return _emit(args, mv.to_dict(), f"registered {mv.ref} ({mv.n_bytes} bytes, sha256 {mv.sha256[:12]})")


def cmd_attach_eval(args: argparse.Namespace) -> int:
    from llmops.registry import api

    name, alias, version = _parse_spec(args.spec)
    if c := client(args):
        version = version or c.show(name, f"@{alias or 'latest'}")["version"]
        ev = c.attach_eval(name, version, args.results_dir, suite=args.suite)
        return _emit(args, ev, f"attached {ev['suite']} results to {name}/{version} at {args.registry_url}")
    version = version or api.get_version(name, alias=alias, db_url=args.db).version
    who = _authorized(args, "attach_eval")
    ev = api.attach_eval(name, version, args.results_dir, suite=args.suite, db_url=args.db, actor=who.id)
    return _emit(args, ev.to_dict(), f"attached {ev.suite} results to {name}/{version}")


def cmd_tag(args: argparse.Namespace) -> int:
    from llmops.registry import api

    name, _, version = _parse_spec(args.spec, need_version=True)
    mv = api.set_tags(name, version, _kv(args.tags), db_url=args.db, principal=_principal(args), reason=args.reason)
    return _emit(args, mv.to_dict(), f"{mv.ref} tags: {json.dumps(mv.tags)}")


def cmd_delete(args: argparse.Namespace) -> int:
    from llmops.registry import api

    name, _, version = _parse_spec(args.spec, need_version=True)
    api.delete_version(name, version, db_url=args.db, principal=_principal(args), reason=args.reason)
    return _emit(args, {"deleted": f"{name}/{version}"}, f"deleted {name}/{version}")


def cmd_promote(args: argparse.Namespace) -> int:
    from llmops.eval.api import bootstrap_compare
    from llmops.registry import api
    from llmops.registry.entities import PromotionRefused

    name, _, version = _parse_spec(args.spec, need_version=True)
    if c := client(args):
        from llmops.cli.registry_http import remote_promote

        return remote_promote(c, args, name, version)
    try:
        rec = api.promote(name, version, args.alias, args.gates, reason=args.reason, force=args.force,
                          db_url=args.db, compare=bootstrap_compare, principal=_principal(args))
    except PromotionRefused as exc:
        if args.json:
            print(json.dumps({"decision": "refused", "message": str(exc), "report": exc.report}, indent=2, default=str))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _emit(args, rec.to_dict(), f"{name}/{version} is now `{args.alias}` ({rec.decision})")


def cmd_alias(args: argparse.Namespace) -> int:
    from llmops.errors import UserError
    from llmops.registry import api

    if args.delete == (args.version is not None) and not (args.history or not args.alias):
        raise UserError("give either a VERSION to point the alias at, or --delete")
    if c := client(args):
        from llmops.cli.registry_http import remote_alias

        return remote_alias(c, args)
    if args.history or not args.alias:
        events = api.alias_history(args.name, args.alias, db_url=args.db)
        lines = [f"{e.at:%Y-%m-%d %H:%M:%S}  {e.alias:<12} {e.from_version!s:>4} -> {e.to_version!s:<4} "
                 f"{e.actor}{' FORCED' if e.forced else ''}  {e.reason}" for e in events]
        return _emit(args, [e.to_dict() for e in events], "\n".join(lines) or "(no alias moves)")
    if args.delete == (args.version is not None):
        raise UserError("give either a VERSION to point the alias at, or --delete")
    ev = api.set_alias(args.name, args.alias, None if args.delete else args.version, reason=args.reason,
                       db_url=args.db, principal=_principal(args), force=args.force)
    return _emit(args, ev.to_dict(), f"{args.name}@{args.alias}: {ev.from_version} -> {ev.to_version}")


def cmd_lineage(args: argparse.Namespace) -> int:
    from llmops.registry import api
    from llmops.registry.lineage import export

    if c := client(args):
        from llmops.cli.registry_http import remote_lineage

        return remote_lineage(c, args)
    return write_or_print(export(api.list_versions(args.name, db_url=args.db), args.format,
                                 title=f"{args.name} lineage"), args.out)


def cmd_diff(args: argparse.Namespace) -> int:
    from llmops.registry import api

    store = api.get_store(args.db)
    va, vb = (_version_of(api, args.name, t, args.db) for t in (args.a, args.b))
    a, b = store.get_version(args.name, va), store.get_version(args.name, vb)

    def changed(x: dict, y: dict) -> dict[str, list]:
        return {k: [x.get(k), y.get(k)] for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)}

    metrics: dict[str, dict[str, list]] = {}
    ea = {e.suite: e.scores() for e in store.evals(args.name, va)}
    eb = {e.suite: e.scores() for e in store.evals(args.name, vb)}
    for suite in sorted(set(ea) | set(eb)):
        metrics[suite] = changed(ea.get(suite, {}), eb.get(suite, {}))
    fa = store.artifacts.file_digests(a.artifact_uri, a.sha256)
    fb = store.artifacts.file_digests(b.artifact_uri, b.sha256)
    data = {"a": a.ref, "b": b.ref, "same_artifact": a.sha256 == b.sha256, "lineage": changed(a.lineage, b.lineage),
            "tags": changed(a.tags, b.tags), "metrics": metrics,
            "files": {"added": sorted(set(fb) - set(fa)), "removed": sorted(set(fa) - set(fb)),
                      "changed": sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k])}}
    text = [f"{a.ref} vs {b.ref}: artifact {'identical' if data['same_artifact'] else 'differs'}"]
    for section in ("lineage", "tags"):
        text += [f"{section}.{k}: {json.dumps(v[0], default=str)[:80]} -> {json.dumps(v[1], default=str)[:80]}"
                 for k, v in data[section].items()]
    for suite, rows in metrics.items():
        text += [f"metric {suite}.{m}: {x} -> {y}" for m, (x, y) in rows.items()]
    text += [f"files {k}: {', '.join(v)}" for k, v in data["files"].items() if v]
    return _emit(args, data, "\n".join(text))


def cmd_card(args: argparse.Namespace) -> int:
    from llmops.registry import api
    from llmops.registry.card import to_html

    name, alias, version = _parse_spec(args.spec)
    if c := client(args):
        from llmops.cli.registry_http import remote_card

        return remote_card(c, args, name, alias, version)
    mv = api.get_version(name, version=version, alias=alias, db_url=args.db)
    text = api.card(name, mv.version, db_url=args.db)
    if args.html:
        text = to_html(text, f"{mv.name}/{mv.version} model card")
    return write_or_print(text, args.out)


def cmd_policy(args: argparse.Namespace) -> int:
    from llmops.errors import UserError
    from llmops.registry import api, governance

    store = api.get_store(args.db)
    if args.action == "list":
        rows = [p.to_dict() for p in store.policies(args.name)]
        lines = [f"{p['model']:<24} {p['alias']:<12} {'protected' if p['protected'] else 'gated':<10} "
                 f"{len(p['gates'].get('rules', []))} rule(s)  {p['gates_source']}  by {p['updated_by']}" for p in rows]
        return _emit(args, rows, "\n".join(lines) or "(no alias policies: every alias moves freely)")
    if not (args.name and args.alias):
        raise UserError("policy set needs NAME (or '*') and ALIAS")
    pol = governance.set_policy(store, _principal(args), args.name, args.alias, args.gates,
                                protected=not args.unprotected, reason=args.reason)
    return _emit(args, pol.to_dict(), f"{pol.model}@{pol.alias}: {'protected' if pol.protected else 'gated'}, "
                                      f"{len(pol.gates.get('rules', []))} rule(s)")


def cmd_audit(args: argparse.Namespace) -> int:
    from llmops.registry import api

    from llmops.registry.browse import audit_page

    store = api.get_store(args.db)
    entries, _ = _pages(lambda n, c: audit_page(store, args.name, n, c), None, None)
    entries.reverse()  # oldest first, as the log reads
    lines = [f"{e.at:%Y-%m-%d %H:%M:%S}  {e.action:<12} {e.name}{'/' + str(e.version) if e.version else ''}  "
             f"{e.actor}  {e.reason}  {json.dumps(e.detail, default=str)[:120]}" for e in entries]
    return _emit(args, [e.to_dict() for e in entries], "\n".join(lines) or "(audit log empty)")
