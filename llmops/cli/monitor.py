"""`llmops monitor ...`: drift, profile, check, watch, plot, quality."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    mon = subparsers.add_parser("monitor", help="training plots, production quality, prompt drift, alert rules",
                                description="Monitoring: drift between reference and production prompts, alert "
                                "rules (log / signed webhook / retraining launch), quality from feedback, run plots.")
    sub = mon.add_subparsers(dest="monitor_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("drift", help="compare current prompts with a reference",
                       description="REFERENCE: prompts file (text lines or JSONL), a profile JSON from `monitor "
                       "profile`, or registry:NAME/VERSION with a stored profile. Exit 0 (1 with --fail-on-drift "
                       "when drift is found).")
    p.add_argument("--reference", required=True)
    p.add_argument("--current", required=True, help="current prompts (text lines or JSONL)")
    p.add_argument("--model", metavar="REF", help="tokenize with this model's tokenizer (default: words)")
    p.add_argument("--json", action="store_true", help="one JSON object: top-level `drift` + per-feature statistics")
    p.add_argument("--fail-on-drift", action="store_true")
    p.add_argument("--prometheus-textfile", metavar="FILE", help="also write drift gauges for node-exporter")
    p.add_argument("--db", metavar="URL")
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("profile", help="fit a drift reference profile once (file, and optionally a registry version)",
                       description="Fits the reference and calibrates its thresholds: a bootstrap over whole "
                       "prompts at each window size (the default grid, or --window-size N ... for the sizes your "
                       "drift checks will see).")
    p.add_argument("data", help="reference prompts (text lines or JSONL)")
    p.add_argument("--out", required=True, help="profile JSON to write")
    p.add_argument("--model", metavar="REF", help="tokenize with this model's tokenizer")
    p.add_argument("--window-size", type=int, action="append", metavar="N",
                   help="calibrate for windows of N prompts (repeatable; default: 20 ... 5000)")
    p.add_argument("--embedding-model", metavar="REF",
                   help="add embedding drift: this (served) model's mean-pooled last hidden state")
    p.add_argument("--register", metavar="NAME/VERSION", help="also store it with this registry version")
    p.add_argument("--db", metavar="URL")
    p.set_defaults(func=cmd_profile)

    for name, help_ in (("check", "evaluate alert rules once"), ("watch", "evaluate alert rules on a schedule")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--rules", required=True, help="alert rules YAML (see recipes/alerts/default.yaml)")
        p.add_argument("--db", metavar="URL", help="feedback + alert-state database")
        p.add_argument("--json", action="store_true")
        p.add_argument("--prometheus-textfile", metavar="FILE", help="write metrics after each check")
        if name == "watch":
            p.add_argument("--interval", type=float, default=300.0, metavar="S", help="seconds between checks")
            p.add_argument("--iterations", type=int, help="stop after N checks (default: run until interrupted)")
            p.add_argument("--prometheus-port", type=int, help="serve /metrics on ADDR:PORT")
            p.add_argument("--prometheus-addr", default="127.0.0.1", metavar="ADDR",
                           help="bind address of /metrics (default 127.0.0.1; 0.0.0.0 to be scraped from elsewhere)")
        p.set_defaults(func=cmd_check if name == "check" else cmd_watch)

    p = sub.add_parser("outputs", help="per model version: response length, empty and refusal rate, ratings")
    p.add_argument("--window", default="1d", help="responses created within this window (e.g. 6h, 1d, 1w)")
    p.add_argument("--prometheus-textfile", metavar="FILE", help="also write the gauges for node-exporter")
    p.add_argument("--db", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_outputs)

    p = sub.add_parser("alerts", help="alert states and incidents (with their retraining state)")
    p.add_argument("--db", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("plot", help="plots (loss, lr, throughput) and a summary of one or more runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", help="output directory (default: RUN_DIR/monitor)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("quality", help="mean rating, win rate and volume per model and time window")
    p.add_argument("--window", default="1d", help="window length (e.g. 6h, 1d, 1w)")
    p.add_argument("--windows", type=int, default=7, help="number of windows back from now")
    p.add_argument("--prometheus-textfile", metavar="FILE", help="also write the newest window's gauges")
    p.add_argument("--db", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quality)


def _textfile(path: str | None, observe) -> None:
    """Write node-exporter gauges after `observe(metrics)` filled them (no-op without a path)."""
    if path:
        from llmops.monitor.prometheus import MonitorMetrics

        metrics = MonitorMetrics()
        observe(metrics)
        metrics.write_textfile(path)


def _window(text: str):
    from llmops.errors import UserError
    from llmops.monitor.rules import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"--window: {exc}") from None


def _tokenizer(model: str | None):
    from llmops.monitor.features import make_tokenizer, tokenizer_spec

    spec = tokenizer_spec(model)
    return spec, make_tokenizer(spec)


def cmd_drift(args: argparse.Namespace) -> int:
    from llmops.monitor.drift import compare, fit_profile, is_profile_file
    from llmops.monitor.features import read_prompts
    from llmops.monitor.references import resolve_reference

    if args.reference.startswith("registry:") or is_profile_file(args.reference):
        profile = resolve_reference(args.reference, args.db)
        tokenize = _tokenizer(args.model)[1] if args.model else None
    else:
        spec, tokenize = _tokenizer(args.model)
        profile = fit_profile(read_prompts(args.reference), tokenize, spec, source=args.reference)
    report = compare(profile, read_prompts(args.current), tokenize)
    _textfile(args.prometheus_textfile, lambda m: m.observe_drift(report))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        verdict = "YES" if report["drift"] else "no" if report["decided"] else f"undecided ({report['why_undecided']})"
        print(f"drift: {verdict}  (reference {report['n_reference']} prompts, current {report['n_current']})")
        for name, f in report["features"].items():
            threshold = "n/a" if f["threshold"] is None else f"{f['threshold']:.4f}"
            psi_text = f"PSI {f['psi']:.3f} ({f['psi_level']})" if "psi" in f else ""
            print(f"  {name:<20} {'DRIFT' if f['drift'] else 'ok':<6} {f['method']:<15} "
                  f"{f['statistic']:.4f} (threshold {threshold})  {psi_text}")
    return 1 if (args.fail_on_drift and report["drift"]) else 0


def cmd_profile(args: argparse.Namespace) -> int:
    from llmops.errors import UserError
    from llmops.monitor.drift import fit_profile, save_profile
    from llmops.monitor.features import read_prompts

    from llmops.monitor.drift import DriftConfig

    spec, tokenize = _tokenizer(args.model)
    cfg = DriftConfig(window_sizes=tuple(args.window_size)) if args.window_size else DriftConfig()
    embed = embedding = None
    if args.embedding_model:
        from llmops.monitor.embeddings import embedding_spec, make_embedder

        embedding = embedding_spec(args.embedding_model)
        embed = make_embedder(embedding)
    profile = fit_profile(read_prompts(args.data), tokenize, spec, cfg, source=args.data, embed=embed,
                          embedding=embedding)
    save_profile(profile, args.out)
    print(f"wrote {args.out} ({profile['n_prompts']} prompts, sha256 {profile['sha256'][:12]})")
    if args.register:
        from llmops.monitor.references import store_reference

        name, _, version = args.register.removeprefix("registry:").partition("/")
        if not version.isdigit():
            raise UserError(f"--register expects NAME/VERSION, got `{args.register}`")
        store_reference(name, int(version), profile, args.db)
        print(f"stored with registry:{name}/{version}")
    return 0


def _engine(args: argparse.Namespace):
    from llmops.monitor.alerts import AlertEngine
    from llmops.monitor.rules import load_rules

    return AlertEngine(load_rules(args.rules), args.db)


def _report(args: argparse.Namespace, outcomes, metrics, engine=None) -> None:
    if metrics is not None:
        metrics.observe_alerts(outcomes, engine.rules.rules if engine else None)
        if engine is not None and engine._jobs is not None:
            metrics.observe_jobs(engine.jobs.list(limit=1000))
        if args.prometheus_textfile:
            metrics.write_textfile(args.prometheus_textfile)
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], default=str))
    else:
        for o in outcomes:
            value = "n/a" if o.value is None else f"{o.value:.4g}"
            print(f"{o.rule:<24} {o.state:<8} value {value:<10} {o.event or '':<10} {o.detail}")
    sys.stdout.flush()


def _metrics(args: argparse.Namespace):
    if not (args.prometheus_textfile or getattr(args, "prometheus_port", None)):
        return None
    from llmops.monitor.prometheus import MonitorMetrics

    metrics = MonitorMetrics()
    if getattr(args, "prometheus_port", None):
        metrics.serve(args.prometheus_port, args.prometheus_addr)
    return metrics


def cmd_check(args: argparse.Namespace) -> int:
    engine = _engine(args)
    metrics = _metrics(args)
    _report(args, engine.check(), metrics, engine)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from llmops.monitor.alerts import watch

    engine = _engine(args)
    metrics = _metrics(args)
    watch(engine, args.interval, args.iterations, on_check=lambda outcomes: _report(args, outcomes, metrics, engine))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from llmops.monitor.training import plot_runs

    result = plot_runs(args.run_dirs, args.out)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    for run, s in result["summaries"].items():
        tp = f"{s['throughput_median']:.0f} {s['unit']}/s" if s.get("throughput_median") else "n/a"
        print(f"{run}: {s['steps']} steps, loss {s['first_loss']} -> {s['final_loss']} (min {s['min_loss']}), "
              f"median throughput {tp}, best eval loss {s['best_eval_loss']}")
    print("plots: " + ", ".join(result["plots"]))
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from llmops.monitor.quality import quality_windows

    rows = quality_windows(args.db, _window(args.window), args.windows)
    newest = max((r["window_end"] for r in rows), default=None)
    _textfile(args.prometheus_textfile, lambda m: m.observe_quality([r for r in rows if r["window_end"] == newest]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mean = "-" if r["mean_rating"] is None else f"{r['mean_rating']:.3f}"
        win = "-" if r["win_rate"] is None else f"{r['win_rate']:.3f}"
        print(f"{r['window_start'][:16]}  {str(r['model']):<32} ratings {r['n_ratings']:>5}  mean {mean:>6}  "
              f"win rate {win:>6}  comparisons {r['n_comparisons']}")
    if not rows:
        print("(no feedback in these windows)")
    return 0


def cmd_outputs(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from llmops.monitor.outputs import output_report

    window = _window(args.window)
    now = datetime.now(timezone.utc)
    rows = output_report(args.db, now - window, now)
    _textfile(args.prometheus_textfile, lambda m: m.observe_outputs(rows))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mean = "-" if r["mean_rating"] is None else f"{r['mean_rating']:.2f}"
        print(f"{str(r['model_version']):<24} responses {r['n_responses']:>6}  words mean {r['mean_words']:6.1f} "
              f"p95 {r['p95_words']:6.1f}  empty {r['empty_rate']:.3f}  refusal {r['refusal_rate']:.3f}  "
              f"ratings {r['n_ratings']} (mean {mean})")
    if not rows:
        print("(no responses in this window)")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from llmops.monitor.history import incidents_page
    from llmops.monitor.incidents import alert_states

    states, (newest, _) = alert_states(args.db), incidents_page(args.db, limit=50)
    incidents = newest[::-1]  # the newest 50, oldest first
    if args.json:
        print(json.dumps({"alerts": states, "incidents": incidents}, indent=2))
        return 0
    for a in states:
        print(f"{a['rule']:<24} {a['state']:<8} model {a['model'] or '-':<28} since {str(a['state_since'])[:19]}  "
              f"fired {a['fire_count']}x  scope {a['scope']}" + (f"  ERROR {a['last_error']}" if a["errors"] else ""))
    for i in incidents:
        print(f"incident {i['id']:<5} {i['rule']:<24} opened {i['opened_at'][:19]}  "
              f"{'resolved ' + i['resolved_at'][:19] if i['resolved_at'] else 'open':<28} retrain {i['retrain']:<9} "
              f"{i['job_id'] or ''}  {i['why'] or ''}")
    return 0
