"""`python -m llmops` and `accelerate launch -m llmops ...` enter here."""

from llmops.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
