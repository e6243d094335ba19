"""Model cards: what a reviewer reads about a version, in the Hugging Face model-card format.

A card is a README.md with YAML metadata (base_model, datasets, library_name, license,
tags, model-index with every attached metric and its interval) and a body: lineage
(recipe hash, data fingerprints, feedback snapshot, parents), a training summary,
intended use and limitations (the recipe's `card:` section) and the promotion history.
The registry writes it beside the artifact (``cards/NAME/VERSION/README.md``, outside the
read-only version folder whose hash it must not change) at registration and rewrites it
when evaluations are attached, tags change or aliases move. It loads with
``huggingface_hub.ModelCard``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from llmops.registry.entities import AliasEvent, EvalAttachment, ModelVersion, PromotionRecord


@dataclass
class CardInputs:
    version: ModelVersion
    evals: list[EvalAttachment] = field(default_factory=list)
    promotions: list[PromotionRecord] = field(default_factory=list)
    alias_events: list[AliasEvent] = field(default_factory=list)


def _recipe(mv: ModelVersion) -> dict[str, Any]:
    recipe = mv.lineage.get("recipe")
    return recipe if isinstance(recipe, dict) else {}


def _library(mv: ModelVersion) -> str:
    recipe = _recipe(mv)
    if (recipe.get("lora") or {}).get("enabled") or (mv.artifact_path / "adapter_config.json").exists():
        return "peft"
    return "transformers"


def _metric_entries(ev: EvalAttachment) -> list[dict[str, Any]]:
    out = []
    for key, val in sorted(ev.metrics.items()):
        score = val.get("score") if isinstance(val, dict) else val
        if not isinstance(score, (int, float)):
            continue
        entry: dict[str, Any] = {"type": key, "value": round(float(score), 6), "name": key}
        if isinstance(val, dict) and isinstance(val.get("ci_low"), (int, float)):
            entry["args"] = {"ci_low": round(float(val["ci_low"]), 6), "ci_high": round(float(val["ci_high"]), 6),
                             "confidence": float(val.get("confidence", 0.95))}
        out.append(entry)
    return out


def metadata(inputs: CardInputs) -> dict[str, Any]:
    """The YAML metadata block (Hugging Face model-card schema)."""
    mv = inputs.version
    card_cfg = _recipe(mv).get("card") or {}
    data = _recipe(mv).get("data") or {}
    datasets = [d for d in (data.get("train"), data.get("validation")) if isinstance(d, str) and d]
    tags = ["llmops", f"llmops-recipe-{mv.tags['recipe']}" if "recipe" in mv.tags else "llmops-registered",
            *card_cfg.get("tags", [])]
    meta: dict[str, Any] = {
        "library_name": _library(mv),
        "license": mv.tags.get("license") or card_cfg.get("license") or "other",
        "tags": list(dict.fromkeys(tags)),
        "model_name": f"{mv.name}/{mv.version}",
    }
    if mv.lineage.get("base_model_ref"):
        meta["base_model"] = str(mv.lineage["base_model_ref"])
    if datasets:
        meta["datasets"] = datasets
    results = []
    for ev in inputs.evals:
        metrics = _metric_entries(ev)
        if metrics:
            results.append({"task": {"type": "text-generation", "name": ev.suite},
                            "dataset": {"type": ev.suite, "name": ev.suite},
                            "metrics": metrics,
                            "source": {"name": f"llmops eval (results sha256 {ev.sha256[:12]})",
                                       "url": f"llmops://registry/{mv.name}/{mv.version}/evals/{ev.id}"}})
    if results:
        meta["model-index"] = [{"name": f"{mv.name}/{mv.version}", "results": results}]
    return meta


def _lineage_lines(mv: ModelVersion) -> list[str]:
    lin = mv.lineage
    lines = [f"- **Artifact**: sha256 `{mv.sha256}` ({mv.n_bytes:,} bytes), registered {mv.created_at:%Y-%m-%d %H:%M} "
             f"UTC by {mv.created_by}"]
    for key, label in (("base_model_ref", "Base model"), ("base_model_hash", "Base model hash"),
                       ("parent_version", "Parent version"), ("recipe_hash", "Recipe hash"), ("run_id", "Run"),
                       ("feedback_snapshot_id", "Feedback snapshot")):
        if lin.get(key) not in (None, "", [], {}):
            lines.append(f"- **{label}**: `{lin[key]}`")
    for split, fp in sorted((lin.get("dataset_fingerprints") or {}).items()):
        lines.append(f"- **Data fingerprint ({split})**: `{fp}`")
    return lines


def _training_lines(mv: ModelVersion) -> list[str]:
    recipe, training = _recipe(mv), mv.lineage.get("training") or {}
    if not recipe and not training:
        return ["No training recipe was recorded for this version."]
    lines = []
    if recipe:
        train, lora = recipe.get("train") or {}, recipe.get("lora") or {}
        lines.append(f"- **Recipe**: `{recipe.get('recipe')}`" + (f" — {recipe['description']}"
                                                                   if recipe.get("description") else ""))
        lines.append("- **Method**: " + (f"LoRA r={lora.get('r')} alpha={lora.get('alpha')}" if lora.get("enabled")
                                         else "full fine-tuning"))
        keys = ("lr", "max_steps", "batch_size", "grad_accum", "seed", "mixed_precision")
        lines.append("- **Hyper-parameters**: " + ", ".join(f"{k}={train[k]}" for k in keys if k in train))
    for k in ("steps_completed", "wall_time_s", "world_size", "device", "mixed_precision"):
        if training.get(k) is not None:
            lines.append(f"- **{k}**: {training[k]}")
    if training.get("final_metrics"):
        lines.append(f"- **Final training metrics**: `{json.dumps(training['final_metrics'], default=str)}`")
    return lines


def _eval_lines(evals: list[EvalAttachment]) -> list[str]:
    if not evals:
        return ["No evaluation attached yet."]
    lines = ["| suite | metric | score | 95% interval | results sha256 |", "|---|---|---|---|---|"]
    for ev in evals:
        for m in _metric_entries(ev):
            ci = f"[{m['args']['ci_low']:.4g}, {m['args']['ci_high']:.4g}]" if "args" in m else "—"
            lines.append(f"| {ev.suite} | {m['type']} | {m['value']:.4g} | {ci} | `{ev.sha256[:12]}` |")
    return lines


def _history_lines(inputs: CardInputs) -> list[str]:
    mv = inputs.version
    rows = []
    for p in inputs.promotions:
        failed = [r.get("rule") for r in p.report.get("results", []) if not r.get("passed")]
        detail = f"refused by {', '.join(map(str, failed))}" if failed and p.decision != "accepted" else p.decision
        rows.append((p.at, f"promotion to `{p.alias}`: {detail} — by {p.actor}" + (f" ({p.reason})" if p.reason else "")))
    for e in inputs.alias_events:
        if e.to_version == mv.version:
            what = f"became `{e.alias}`" + (" (FORCED)" if e.forced else "")
        elif e.from_version == mv.version:
            what = f"left `{e.alias}`" + (f" for version {e.to_version}" if e.to_version else "")
        else:
            continue
        rows.append((e.at, f"{what} — by {e.actor}" + (f" ({e.reason})" if e.reason else "")))
    if not rows:
        return ["Not promoted yet."]
    return [f"- {at:%Y-%m-%d %H:%M:%S} UTC: {text}" for at, text in sorted(rows, key=lambda r: r[0])]


def render(inputs: CardInputs) -> str:
    """README.md text of a version's card."""
    mv = inputs.version
    card_cfg = _recipe(mv).get("card") or {}
    front = yaml.safe_dump(metadata(inputs), sort_keys=False, allow_unicode=True)
    body = [
        f"# {mv.name} — version {mv.version}", "",
        (mv.description or f"Model `{mv.name}` version {mv.version} in the llmops registry.")
        + (f" Current aliases: {', '.join(f'`{a}`' for a in mv.aliases)}." if mv.aliases else ""), "",
        "## Intended use", "", card_cfg.get("intended_use") or "Not stated in the training recipe (`card.intended_use`).",
        "", "## Limitations", "",
        card_cfg.get("limitations") or "Not stated in the training recipe (`card.limitations`).", "",
        "## Evaluation", "", *_eval_lines(inputs.evals), "",
        "## Lineage", "", *_lineage_lines(mv), "",
        "## Training", "", *_training_lines(mv), "",
        "## Tags", "", (", ".join(f"`{k}={v}`" for k, v in sorted(mv.tags.items())) or "none"), "",
        "## Promotion history", "", *_history_lines(inputs), "",
    ]
    return f"---\n{front}---\n\n" + "\n".join(body)


def split_card(card_text: str) -> tuple[str, str]:
    """(YAML metadata, Markdown body) of a card."""
    if not card_text.startswith("---\n") or "\n---\n" not in card_text:
        return "", card_text
    end = card_text.find("\n---\n")
    return card_text[4:end], card_text[end + 5:]


def body_html(body: str) -> str:
    """A card body as an HTML fragment: markdown-it with raw HTML disabled when installed (card text
    comes from recipes and tags, so it is never trusted as markup), else preformatted text."""
    try:
        from markdown_it import MarkdownIt

        return MarkdownIt("commonmark", {"html": False}).enable("table").render(body)
    except ImportError:
        return f"<pre class='card'>{html.escape(body)}</pre>"


def to_html(card_text: str, title: str) -> str:
    """A self-contained HTML page of a card."""
    meta, body = split_card(card_text)
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
             "pre.meta{background:#f6f6f6;padding:.5rem;overflow:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{body_html(body)}<h2>Metadata</h2>"
            f"<pre class='meta'>{html.escape(meta)}</pre></body></html>")
