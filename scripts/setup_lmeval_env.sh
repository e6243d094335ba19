#!/usr/bin/env bash
# Build a separate virtualenv with lm-evaluation-harness and llmops, for `make test-lmeval`.
#
# lm-eval brings its own pins (datasets, evaluate, scikit-learn, ...), so it never goes into
# the main .venv. torch is installed first from TORCH_SPEC (the CPU wheel on CPU machines),
# so pip never resolves an unpinned torch to a multi-GB CUDA build; then lm-eval's hf extra
# and llmops (editable, with its core dependencies) under a constraints file that keeps that
# torch.
#
# Usage: scripts/setup_lmeval_env.sh [VENV=.venv-lmeval] [TORCH_SPEC=torch==2.13.0]
# Idempotent: a stamp file skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv-lmeval}"
TORCH_SPEC="${2:-torch==2.13.0}"
LMEVAL_SPEC="${LMEVAL_SPEC:-lm-eval[hf]==0.4.13}"
STAMP="$VENV/.llmops-lmeval-installed"
WANT="$TORCH_SPEC $LMEVAL_SPEC $(sha256sum pyproject.toml scripts/side_venv.sh scripts/setup_lmeval_env.sh | sha256sum | cut -c1-16)"

source scripts/side_venv.sh
side_venv_begin "$VENV" "$STAMP" "$WANT" "$TORCH_SPEC"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
$PIP freeze | grep -iE '^torch==' > "$CONSTRAINTS"
$PIP install --quiet -c "$CONSTRAINTS" "$LMEVAL_SPEC"
$PIP install --quiet -c "$CONSTRAINTS" -e . pytest pytest-timeout

"$VENV/bin/python" -c "import lm_eval, torch, transformers; print('lm_eval', lm_eval.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
echo "$WANT" > "$STAMP"
