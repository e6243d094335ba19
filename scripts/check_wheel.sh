#!/usr/bin/env bash
# What a `pip install llmops` user gets: build the wheel, install it into a fresh venv outside
# the checkout, and run the main job and the rater page from there (nothing from the checkout
# is importable or readable). Usage: scripts/check_wheel.sh [PYTHON]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
work=$(mktemp -d /tmp/llmops-wheel.XXXXXX)
server=""
# The server is waited for before its folder is removed: while it shuts down it still writes
# its log and SQLite files (the WAL checkpoint), and `rm -rf` racing it fails with "Directory not empty".
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

echo "== build the wheel"
# From a clean export of the committed tree, so local files (caches, runs) cannot leak in.
git -C "$repo" archive --format=tar HEAD | (mkdir -p "$work/src" && tar -x -C "$work/src")
"$py" -m pip wheel --quiet --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/llmops-*.whl)
echo "$wheel"

echo "== install it into a fresh venv"
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086
"$work/venv/bin/python" -m pip install --quiet ${TORCH_INDEX:-} "$torch_spec"
"$work/venv/bin/python" -m pip install --quiet "$wheel"

cd "$work"  # outside the checkout
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HF_HUB_DISABLE_PROGRESS_BARS=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
# Reuse the built-in models the test suite built (building them again takes a minute).
export LLMOPS_HOME=${LLMOPS_WHEEL_HOME:-$repo/.cache/test-home}
unset LLMOPS_DATABASE_URL LLMOPS_REGISTRY_ROOT PYTHONPATH
bin="$work/venv/bin"
"$bin/python" - "$repo" <<'PY'
import sys, llmops, llmops.resources as r
repo = sys.argv[1]
assert not llmops.__file__.startswith(repo), f"imported from the checkout: {llmops.__file__}"
for rel in ("recipes/sft_lora.yaml", "eval/docstring_summary.yaml", "eval/metrics/rouge/rouge.py", "feedback/index.html"):
    r.path(rel)
print("package:", llmops.__file__)
PY

echo "== llmops quickstart --fast (from the wheel)"
"$bin/llmops" quickstart --fast --out "$work/qs" > "$work/qs.log" 2>&1 || { tail -40 "$work/qs.log"; exit 1; }
test -s "$work/qs/summary.json" && test -s "$work/qs/report.html"
echo "quickstart: summary.json and report.html written"

echo "== llmops feedback serve: the rater page"
port=$("$bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$bin/llmops" feedback serve --port "$port" --db "sqlite:///$work/feedback.db" --migrate > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 60); do
  if "$bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.5
done
"$bin/python" - "$port" <<'PY' || { echo "--- serve.log"; tail -20 "$work/serve.log"; exit 1; }
import sys, urllib.request
port = sys.argv[1]
page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
assert "<html" in page.lower() and "rater.js" in page, page[:300]
js = urllib.request.urlopen(f"http://127.0.0.1:{port}/static/rater.js", timeout=5)
assert js.status == 200
print("rater page served:", len(page), "bytes")
PY
echo "wheel: 2 passed, 0 failed"
