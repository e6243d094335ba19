"""What the registry pages show, built from the registry's public functions (the CLI's own).

Promotion and alias moves go through `llmops.registry.api` — the same governance, policies and
gates as `llmops registry promote|alias` — with the harness's paired bootstrap injected as
`compare=` exactly as the CLI does; a refusal returns the gate report so the page can say why.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from llmops.registry import api, browse
from llmops.registry.card import body_html, split_card
from llmops.registry.entities import ModelVersion, PromotionRefused, RegistryError
from llmops.registry.governance import Forbidden, Principal
from llmops.registry.lineage import build_graph, to_svg
from llmops.ui import svg

PAGE = 50


def version_url(name: str, version: int | str) -> str:
    return f"/registry/{quote(name, safe='')}/{version}"


def models_context(db: str | None, after: str | None = None, limit: int = PAGE) -> dict[str, Any]:
    page = browse.models_page(api.get_store(db), limit, after)
    return {"models": page.items, "next_cursor": page.next_cursor}


def _lineage_svg(versions: list[ModelVersion]) -> str:
    def href(_nid: str, node: dict[str, str]) -> str | None:
        if node["kind"] != "version":
            return None
        ref = node["label"].split(" [", 1)[0]
        name, _, version = ref.rpartition("/")
        return version_url(name, version) if version.isdigit() else None

    return to_svg(build_graph(versions), href=href)


def model_context(db: str | None, name: str, before: int | None = None, events_before: int | None = None,
                  audit_before: int | None = None, limit: int = PAGE) -> dict[str, Any]:
    """One model: a page of versions (with their lineage drawn), alias moves, audit log, policies."""
    store = api.get_store(db)
    versions = browse.versions_page(store, name, limit, before)
    events = browse.alias_events_page(store, name, limit=20, before=events_before)
    audit = browse.audit_page(store, name, limit=20, before=audit_before)
    return {"model_name": name, "versions": versions.items, "next_cursor": versions.next_cursor,
            "lineage_svg": _lineage_svg(versions.items), "alias_events": events.items,
            "events_cursor": events.next_cursor, "audit": audit.items, "audit_cursor": audit.next_cursor,
            "policies": store.policies(name)}


def version_context(db: str | None, name: str, version: int) -> dict[str, Any]:
    """One version: artifact, lineage, evaluations with intervals, promotions with gate results, card."""
    store = api.get_store(db)
    detail = browse.version_detail(store, name, version=version)
    mv: ModelVersion = detail["version"]
    metrics = detail["metrics"]
    chart = svg.interval_chart("attached evaluation results (95% intervals where recorded)",
                               [(f"{m['suite']}: {m['metric']}", m["score"], m["ci_low"], m["ci_high"])
                                for m in metrics]) if metrics else ""
    promotions = browse.promotions_page(store, name, version=version, limit=20)
    meta, body = split_card(store.card(name, version))
    parents = [v for v in _parents(store, mv)]
    return {"model_name": name, "mv": mv, "metrics": metrics, "metrics_chart": chart, "promotions": promotions.items,
            "card_meta": meta, "card_html": body_html(body), "lineage_svg": _lineage_svg([*parents, mv]),
            "policies": store.policies(name), "aliases_now": browse.model_summary(store, name).aliases,
            "gates_files": shipped_gates()}


def _parents(store, mv: ModelVersion, depth: int = 5) -> list[ModelVersion]:
    """Up to `depth` ancestors of a version in its own model (so the graph shows where it came from)."""
    out, cur = [], mv
    for _ in range(depth):
        parent = cur.lineage.get("parent_version")
        if not (isinstance(parent, int) or (isinstance(parent, str) and parent.isdigit())):
            break
        try:
            cur = store.get_version(mv.name, int(parent))
        except RegistryError:
            break
        out.append(cur)
    return out[::-1]


def shipped_gates() -> list[str]:
    """Gates files shipped in the package (`recipes/gates/*.yaml`) a page may name; never a free path."""
    from llmops import resources

    return sorted(p.stem for p in resources.path("recipes/gates").glob("*.yaml"))


def _gates_file(gates: str | None):
    if not gates:
        return None
    if gates not in shipped_gates():
        raise RegistryError(f"unknown gates file `{gates}` (shipped: {', '.join(shipped_gates())})")
    from llmops import resources

    return resources.path(f"recipes/gates/{gates}.yaml")


def promote(db: str | None, principal: Principal, name: str, version: int, alias: str, reason: str,
            force: bool = False, gates: str | None = None) -> dict[str, Any]:
    """Run a promotion through the registry's gates; returns {"ok", "message", "report"} (never raises
    for a refusal or a bad request: the page shows why)."""
    from llmops.eval.api import bootstrap_compare

    try:
        rec = api.promote(name, version, alias, _gates_file(gates), reason=reason, force=force, db_url=db,
                          compare=bootstrap_compare, principal=principal)
    except PromotionRefused as exc:
        return {"ok": False, "message": str(exc), "report": exc.report}
    except (Forbidden, RegistryError, ValueError) as exc:
        return {"ok": False, "message": str(exc), "report": None}
    return {"ok": True, "message": f"{name}/{version} is now `{alias}` ({rec.decision})", "report": rec.report}


def move_alias(db: str | None, principal: Principal, name: str, alias: str, version: int | None, reason: str,
               force: bool = False) -> dict[str, Any]:
    """Move (or with version None remove) an alias without gates; refused on protected aliases unless forced."""
    try:
        ev = api.set_alias(name, alias, version, reason=reason, db_url=db, principal=principal, force=force)
    except (Forbidden, RegistryError, ValueError) as exc:
        return {"ok": False, "message": str(exc), "report": None}
    return {"ok": True, "message": f"{name}@{alias}: {ev.from_version} -> {ev.to_version}", "report": None}
