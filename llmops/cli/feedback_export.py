"""`llmops feedback export`: every export format, filter and output from the command line.

Without ``--format`` it writes TRL preference pairs as JSONL, as the first exporter did
(the quickstart and the loop call it that way); ``--snapshot`` writes a recorded snapshot
again, byte for byte.
"""

from __future__ import annotations

import argparse

FORMATS = ("trl-preference", "trl-conversational", "kto", "sft", "reward")
OUTPUTS = ("jsonl", "parquet", "hf-dataset")
# llmops.feedback.exports.pairs.STRATEGIES, spelled out so `llmops --help` does not import the store
STRATEGIES = ("best_vs_worst", "all_pairs", "best_vs_random_lower", "corrections", "all_pairs_and_corrections")


def register(sub: argparse._SubParsersAction, db_help: str) -> None:
    e = sub.add_parser(
        "export", help="write training data (TRL preference/conversational, KTO, SFT, reward) from feedback",
        description="Export feedback as data a TRL trainer reads, pinned to a snapshot id (docs/feedback.md, Exports).")
    e.add_argument("--format", default="trl-preference", choices=FORMATS,
                   help="trl-preference/trl-conversational (DPO), kto, sft (corrected responses), reward")
    e.add_argument("--out", required=True, help="output file or folder (a <out>.meta.json records the provenance)")
    e.add_argument("--as", dest="output", choices=OUTPUTS,
                   help="jsonl, parquet or hf-dataset (a datasets.save_to_disk folder); default from --out's suffix: "
                        ".parquet → parquet, no suffix → hf-dataset, else jsonl")
    e.add_argument("--snapshot", metavar="FBS_ID", help="write this recorded snapshot again (no other options apply)")
    g = e.add_argument_group("pairs (trl-preference, trl-conversational, reward)")
    g.add_argument("--strategy", choices=STRATEGIES,
                   help="how rating pairs are picked (default best_vs_worst; reward: all_pairs); corrections: "
                        "chosen = a rater's correction, rejected = the response it corrects; "
                        "all_pairs_and_corrections: both")
    g.add_argument("--min-margin", type=float, default=0.0,
                   help="drop pairs whose margin (a fraction of the strongest preference, (0, 1]) is below this")
    g.add_argument("--seed", type=int, default=0, help="seed of best_vs_random_lower")
    g.add_argument("--kto-threshold", type=float, default=0.5,
                   help="kto: a response is desirable when its mean rating, mapped to [0, 1], is above this")
    g.add_argument("--sft-style", choices=["messages", "prompt-completion"], default="messages",
                   help="sft: conversational messages (default) or prompt/completion strings")
    f = e.add_argument_group("filters")
    f.add_argument("--project", help="only items of this project (name or id)")
    f.add_argument("--since", help="judgements made at or after this time (ISO 8601; UTC if no offset)")
    f.add_argument("--until", help="judgements made before this time")
    f.add_argument("--model", help="only responses of this model reference (exact, e.g. registry:docs@production)")
    f.add_argument("--model-version", help="only responses of this model version")
    f.add_argument("--rater", action="append", dest="raters", metavar="NAME", help="only these raters (repeatable)")
    f.add_argument("--min-agreement", type=float, help="drop rows whose agreement (0..1) is lower or unknown")
    f.add_argument("--min-raters", type=int, help="drop rows judged by fewer raters")
    e.add_argument("--db", help=db_help)
    e.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    from llmops.feedback.exports import export as run_export
    from llmops.feedback.exports import make_filters, write_snapshot

    if args.snapshot:
        result = write_snapshot(args.db, args.snapshot, args.out, args.output)
    else:
        filters = make_filters(project=args.project, since=args.since, until=args.until, model=args.model,
                               model_version=args.model_version, raters=args.raters,
                               min_agreement=args.min_agreement, min_raters=args.min_raters)
        result = run_export(args.db, args.format, args.out, output=args.output, filters=filters,
                            strategy=args.strategy, min_margin=args.min_margin, seed=args.seed,
                            kto_threshold=args.kto_threshold, sft_style=args.sft_style)
    alpha = result.agreement.get("krippendorff_alpha_interval")
    print(f"wrote {result.n_rows} {result.format} rows to {result.path} as {result.output} "
          f"(snapshot {result.snapshot_id}, alpha_interval={'n/a' if alpha is None else f'{alpha:.3f}'})")
    return 0
