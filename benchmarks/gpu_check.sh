#!/usr/bin/env bash
# GPU check of the training stack (<= 8 minutes on one H200). Prints ONE JSON line on stdout;
# logs go to stderr. Usage: benchmarks/gpu_check.sh [--sft-steps N ...]   (see benchmarks/gpu_check.py)
# Needs: a CUDA build of torch; vllm optional (generation comparison skipped without it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_DISABLE_PROGRESS_BARS=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: no CUDA device")'
exec timeout 480 "$PY" benchmarks/gpu_check.py "$@" 2> >(cat >&2)
