"""`llmops` entry point.

Each command lives in its own module under `llmops/cli/` exposing
``register(subparsers)``; heavy libraries are imported inside the handlers so that
``llmops --help`` stays instant. A `UserError` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from llmops import __version__
from llmops.errors import UserError
from llmops.settings import apply_offline_defaults

# One line per command module; each registers its own sub-commands.
COMMAND_MODULES = [
    "llmops.cli.validate",
    "llmops.cli.train",
    "llmops.cli.models_cmd",
    "llmops.cli.data",
    "llmops.cli.eval",
    "llmops.cli.bench",
    "llmops.cli.feedback",
    "llmops.cli.registry",
    "llmops.cli.monitor",
    "llmops.cli.reward",
    "llmops.cli.serve",
    "llmops.cli.quickstart",
    "llmops.cli.loop",
    "llmops.cli.resources",
    "llmops.cli.db",
    "llmops.cli.jobs",
    "llmops.cli.compress",
    "llmops.cli.tune",
    "llmops.cli.runs",
    "llmops.cli.ui",
]


# Top-level command -> the module that registers it, so that a command line imports only its own
# module (tests/foundation/test_cli_help.py checks this against what the modules register).
COMMANDS = {
    "validate": "llmops.cli.validate", "train": "llmops.cli.train", "models": "llmops.cli.models_cmd",
    "data": "llmops.cli.data", "eval": "llmops.cli.eval", "bench": "llmops.cli.bench",
    "feedback": "llmops.cli.feedback", "registry": "llmops.cli.registry", "monitor": "llmops.cli.monitor",
    "reward": "llmops.cli.reward", "rm": "llmops.cli.reward", "serve": "llmops.cli.serve",
    "quickstart": "llmops.cli.quickstart", "loop": "llmops.cli.loop", "resources": "llmops.cli.resources",
    "db": "llmops.cli.db", "jobs": "llmops.cli.jobs", "compress": "llmops.cli.compress", "tune": "llmops.cli.tune",
    "runs": "llmops.cli.runs", "ui": "llmops.cli.ui",
}


def invoked_command(argv: list[str]) -> str | None:
    """The command an argument list runs (its first word, after the top-level flags), if known."""
    for word in argv:
        if word in ("-v", "--verbose"):
            continue
        return word if word in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `only` (a key of COMMANDS) just that command's module registered."""
    parser = argparse.ArgumentParser(
        prog="llmops",
        description="Fine-tune, evaluate and improve language models from human feedback.",
        epilog="Run `llmops COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"llmops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and HF progress bars")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [COMMANDS[only]] if only else COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command not present in this build
                continue
            raise
        module.register(subparsers)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        for noisy in ("httpx", "urllib3", "filelock", "datasets", "transformers", "torch", "alembic", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # torchao (when installed, imported by transformers/peft) warns on import about CUDA-only
        # extensions and triton that a CPU machine never loads; torch's pytree warns about its enums.
        for noisy in ("torchao", "torch.utils._pytree"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """`argv` None: this process was started for one command (console script, ``python -m``)."""
    if argv is None:
        from llmops.gc_policy import use_in_this_process

        use_in_this_process()  # fewer full GC passes over torch's objects, and none at exit
    apply_offline_defaults()
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(invoked_command(words))  # `llmops --help`, errors, ...: every command
    args = parser.parse_args(words)
    if args.verbose:
        import os

        os.environ["LLMOPS_VERBOSE"] = "1"
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
