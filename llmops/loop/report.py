"""``report.html`` (self-contained: inline PNGs and SVG, no scripts, no CDN) and ``summary.json``.

Both are rendered from the same facts dict the quickstart collected, so the page and the
JSON can never disagree. Every simulated part is labelled as such.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from llmops.loop import charts
from llmops.loop.progress import write_json_atomic

SIMULATED = ("SIMULATED: the users and raters in this run are deterministic programs, not people "
             "(ratings from ROUGE-L buckets against the reference, comparisons prefer the higher ROUGE-L).")

CSS = """
body{font-family:system-ui,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:14px} td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f4f4f4} .sim{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px;border-radius:6px}
.ok{color:#1b7f3b;font-weight:600} .no{color:#b02a2a;font-weight:600} img{max-width:100%}
code,pre{background:#f6f6f6;padding:1px 4px;border-radius:3px} pre{padding:8px;overflow-x:auto;font-size:12px}
.small{font-size:13px;color:#555}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(x: Any, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else _e(x)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _paired(comparison: dict[str, Any]) -> str:
    return _table(["metric", "baseline", "candidate", "delta", "p-value", "test"], [
        [_e(m), _num(r["baseline"]), _num(r["candidate"]), f"{r['delta']:+.4f}", _num(r["p_value"], 3), _e(r["test"])]
        for m, r in comparison.items()])


def _decision(title: str, promo: dict[str, Any]) -> str:
    verdict = '<span class="ok">promoted</span>' if promo.get("promoted") else '<span class="no">not promoted</span>'
    rows = []
    for stage in ("staging", "production"):
        if stage in promo:
            for rule in promo[stage].get("rules", []):
                rows.append([stage, _e(rule["rule"]), '<span class="ok">pass</span>' if rule["passed"]
                             else '<span class="no">fail</span>', _e(rule["detail"])])
    better = promo.get("better")
    extra = (f"<p>Better than production? <b>{'yes' if better['verdict'] else 'no'}</b>: {_e(better['detail'])}</p>"
             if better else "")
    return (f"<h3>{_e(title)}: {verdict}</h3><p>{_e(promo.get('why', ''))}</p>{extra}"
            + (_table(["alias", "gate rule", "result", "detail"], rows) if rows else ""))


def _reward_check(check: dict[str, Any] | None, metric: str) -> str:
    """The reward model checked against the raters and the task metric (never just trusted)."""
    if not check:
        return ""
    verdict = ("<p class='no'>The reward model and the task metric DISAGREE: the reward model prefers the "
               f"{_e(check['reward_prefers'])}, {_e(metric)} prefers the {_e(check['metric_prefers'])}. "
               "Trust the task metric, not the reward win rate.</p>" if check["disagree"] else
               f"<p class='ok'>Reward model and {_e(metric)} agree: both prefer the {_e(check['metric_prefers'])}.</p>")
    return (f"<p>Reward model check: held-out pairwise accuracy against the SIMULATED raters "
            f"<b>{_num(check.get('heldout_pair_accuracy'), 3)}</b> on {_e(check.get('heldout_pairs'))} pairs of prompts it "
            f"never saw; Spearman rank correlation of its scores with per-response {_e(metric)} on the "
            f"{check['n_responses']} held-out eval responses <b>{_num(check.get('spearman_rho'), 3)}</b> "
            f"(p={_num(check.get('spearman_p'), 3)}).</p>" + verdict)


def _method(settings: dict[str, Any]) -> str:
    return {"rft": "rejection-sampling FT", "dpo": "DPO"}.get(settings.get("improve", "dpo"), settings.get("improve"))


def _project_line(fb: dict[str, Any], sft: dict[str, Any] | None) -> str:
    """The rating project the raters worked through (assignment, overlap k) and the SFT export of corrections."""
    if "project" not in fb:
        return ""
    line = (f"<p>Rating project <code>{_e(fb['project'])}</code>: assignment with overlap k={fb['overlap_k']} "
            f"({_e(', '.join(str(n) for n in fb.get('items_per_rater', [])))} items per rater); "
            f"{fb.get('corrections', 0)} SIMULATED corrections (the reference text)")
    if sft:
        line += (f" → SFT export of {sft['n_rows']} rows <code>{_e(Path(sft['path']).name)}</code>, "
                 f"snapshot <code>{_e(sft['snapshot_id'])}</code>")
    return line + ".</p>"


def summary(facts: dict[str, Any]) -> dict[str, Any]:
    """The JSON twin of the page: the collected facts plus the headline outcome."""
    reg = facts["registry"]
    return {
        "simulated_feedback": True,
        "simulated_note": SIMULATED,
        "production_version": reg["production"],
        "promotions": {"v1": facts["promote_v1"], "v2": facts["promote_v2"]},
        "evaluation": {"base": facts["eval_base"], "v1": facts["eval_v1"], "v2": facts["eval_v2"],
                       "v1_vs_base": facts["v1"]["vs_base"], "v2_vs_v1": facts["eval_v2"]["vs_v1"],
                       "reward_winrate_v2_vs_v1": facts["eval_v2"].get("reward_winrate")},
        "training": {"sft": facts["sft"], "reward": facts["reward"], "v2": facts["v2_train"]},
        "feedback": facts["feedback"],
        "export": facts["export"],
        "export_sft": facts.get("export_sft"),
        "quality": facts["quality"],
        "drift": {k: v for k, v in facts["drift"].items() if k not in ("reference_token_length", "current_token_length")},
        "registry": reg,
        "timings": facts["timings"],
        "total_seconds": sum(t["seconds"] for t in facts["timings"]),
        "settings": facts["settings"],
        "db_url": facts["db_url"],
    }


def render_html(facts: dict[str, Any]) -> str:
    s, reg, fb = facts["settings"], facts["registry"], facts["feedback"]
    name = s["name"]
    method = _method(s)
    evals = {"base": facts["eval_base"], "v1 (SFT)": facts["eval_v1"], f"v2 ({method})": facts["eval_v2"]}
    metrics = list(facts["eval_v1"]["metrics"])
    drift = facts["drift"]
    quality_rows = [[_e(q["model"]), q["n_ratings"], _num(q["mean_rating"], 2), _num(q["win_rate"], 3),
                     q["n_comparisons"]] for q in facts["quality"]["by_model"]]
    timing_rows = [[_e(t["title"]), f"{t['seconds']:.1f}"] for t in facts["timings"]]
    timing_rows.append(["<b>total</b>", f"<b>{sum(t['seconds'] for t in facts['timings']):.1f}</b>"])
    win = facts["eval_v2"].get("reward_winrate") or {}
    drift_rows = [[_e(k), _e(f["method"]), _num(f["statistic"], 4), _num(f["threshold"], 4), _num(f.get("psi"), 3),
                   '<span class="no">drift</span>' if f["drift"] else
                   '<span class="ok">no drift</span>' if f["decided"] else "too few prompts"]
                  for k, f in drift["features"].items()]
    drift_verdict = ("<span class='no'>drift detected</span>" if drift["drift"] else
                     "<span class='ok'>no drift</span>" if drift["decided"] else _e(drift["why_undecided"]))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>llmops quickstart report</title>"
        f"<style>{CSS}</style></head><body>",
        "<h1>llmops quickstart: the closed loop</h1>",
        f"<p class='small'>model <code>{_e(name)}</code> on <code>{_e(s['base'])}</code> · database "
        f"<code>{_e(facts['db_url'])}</code> · output <code>{_e(facts['out_dir'])}</code></p>",
        f"<p class='sim'><b>{_e(SIMULATED)}</b></p>",
        "<h2>Outcome</h2>",
        f"<p>Production now holds <b>{_e(name)}/{_e(reg['production'])}</b>.</p>",
        _decision("v1 (SFT)", facts["promote_v1"]),
        _decision(f"v2 ({method} on SIMULATED feedback)", facts["promote_v2"]),
        "<h2>Training</h2>", f"<img alt='loss curves' src='{charts.loss_curves({'SFT (LoRA)': facts['sft']['run_dir'], 'reward model': facts['reward']['run_dir'], f'v2: {method}': facts['v2_train']['run_dir']})}'>",
        "<h2>Evaluation</h2>",
        f"<p>Suite <code>{_e(facts['eval_v1']['suite'])}</code>, {facts['eval_v1']['n']} held-out docstrings, "
        "bootstrap 95% intervals.</p>",
        f"<img alt='metric bars' src='{charts.metric_bars(evals, metrics)}'>",
        "<h3>v1 vs base (paired)</h3>", _paired(facts["v1"]["vs_base"]),
        "<h3>v2 vs v1 (paired)</h3>", _paired(facts["eval_v2"]["vs_v1"]),
        (f"<p>Reward-model win rate of v2 over v1 (reward model trained on the SIMULATED preferences): "
         f"<b>{_num(win.get('score'), 3)}</b> (95% CI {_num(win.get('ci_low'), 3)}–{_num(win.get('ci_high'), 3)}, "
         f"{win.get('wins')} wins / {win.get('ties')} ties / {win.get('losses')} losses, sign test "
         f"p={_num(win.get('p_value'), 3)}).</p>" if win else ""),
        _reward_check(facts["eval_v2"].get("reward_check"), s["metric"]),
        "<h2>Feedback (SIMULATED raters, over HTTP)</h2>",
        f"<p>{fb['requests']} chat requests to <code>{_e(fb['served_model'])}</code> (answered by "
        f"{_e(', '.join(fb['model_versions']))}), {fb['responses']} responses, {fb['ratings']} ratings and "
        f"{fb['comparisons']} comparisons ({fb['ties']} ties) from {len(fb['raters'])} simulated raters.</p>",
        f"<p class='small'>{_e(fb['policy'])}</p>",
        _project_line(fb, facts.get("export_sft")),
        f"<img alt='rating distribution' src='{charts.rating_histogram(fb['rating_histogram'])}'>",
        f"<p>Export: {facts['export']['n_rows']} preference pairs, snapshot <code>{_e(facts['export']['snapshot_id'])}</code>, "
        f"agreement (Krippendorff α) <code>{_e(json.dumps(facts['export']['agreement']))}</code>.</p>",
        "<h2>Quality per version (SIMULATED A/B)</h2>",
        f"<p>The same {facts['quality']['prompts']} prompts sent to both versions; simulated raters rated each answer "
        "and compared the two head to head.</p>",
        _table(["model", "ratings", "mean rating", "win rate", "comparisons"], quality_rows),
        "<h2>Prompt drift: production vs training prompts</h2>",
        f"<p>{drift['n_current']} distinct production prompts ({drift.get('n_served', drift['n_current'])} served) vs "
        f"{drift['n_reference']} training prompts: {drift_verdict}. Thresholds were calibrated when the reference "
        f"was fitted (bootstrap over whole prompts at this window size; false-alarm rate {drift['alpha']:.0%}).</p>",
        f"<img alt='drift' src='{charts.drift_chart(drift)}'>",
        _table(["feature", "test", "statistic", "calibrated threshold", "PSI", "verdict"], drift_rows),
        "<h2>Lineage</h2>", charts.lineage_svg(name, facts["db_url"]),
        f"<details><summary>Mermaid source</summary><pre>{_e(reg['mermaid'])}</pre></details>",
        "<h3>Alias history</h3>",
        _table(["when", "alias", "from", "to", "actor", "reason"],
               [[_e(e["at"]), _e(e["alias"]), _e(e["from_version"]), _e(e["to_version"]), _e(e["actor"]),
                 _e(e["reason"])] for e in reg["alias_history"]]),
        "<h2>Time per stage</h2>", _table(["stage", "seconds"], timing_rows),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(out_dir: Path, facts: dict[str, Any]) -> dict[str, str]:
    html_path, json_path = out_dir / "report.html", out_dir / "summary.json"
    write_json_atomic(json_path, summary(facts))
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(render_html(facts), encoding="utf-8")
    tmp.replace(html_path)
    return {"html": str(html_path), "json": str(json_path)}
