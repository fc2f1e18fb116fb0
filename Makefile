# Set-up and entry points. `make run` and `make test` build .venv from the
# committed lock file when it is missing or older than the lock/setup.py.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
TOOLS    := .tools
UV_VERSION := 0.13.9
UV       := $(TOOLS)/bin/uv
LOCK     := requirements.lock
STAMP    := $(VENV)/.installed
OUTPUT   ?= runs
DATA     ?= data/cardio.csv
ARGS     ?=
PYTEST_ARGS ?=
export UV_PYTHON_DOWNLOADS := never
export UV_NO_CONFIG := 1

# A Python 3.10 interpreter (TFX 1.16 needs 3.10): $PYTHON310, then pyenv's
# 3.10.x, then python3.10 on PATH, each only if it really runs.
PY310 := $(shell for c in "$$PYTHON310" \
	$$(ls -d "$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r) \
	$$(command -v python3.10 2>/dev/null) /usr/bin/python3.10 /usr/local/bin/python3.10; do \
	  [ -n "$$c" ] && [ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo "$$c"; break; }; \
	done)

.PHONY: help venv run test test-fast lock docs clean check-python

help:
	@echo "make run    - build .venv if needed, run the pipeline on $(DATA) (OUTPUT=$(OUTPUT))"
	@echo "make test   - build .venv if needed, run the test suite"
	@echo "make test-fast - the tests without the end-to-end ones (no DAG runs)"
	@echo "make lock   - regenerate $(LOCK) from setup.py"
	@echo "make docs   - regenerate docs/options.md from the command-line parser"
	@echo "make bench-quality - detection quality vs IsolationForest, numeric and mixed tables (DATA_DIR, DATASETS, SEEDS, VARIANTS)"
	@echo "make bench  - pipeline vs plain script at 10k/100k/1M rows (SIZES, EPOCHS, BATCH, REPEAT)"
	@echo "make airflow-test - the Airflow DAG via 'airflow dags test' in a temporary AIRFLOW_HOME"
	@echo "make test-distributed - run + score on a Beam job service and worker pool on another (namespace) host; root (DIST_ARGS)"
	@echo "make clean  - remove runs/ and test outputs (keeps .venv)"

check-python:
	@if [ -z "$(PY310)" ]; then \
	  echo "error: no Python 3.10 interpreter found (TFX 1.16 needs 3.10)." >&2; \
	  echo "  install one (e.g. 'pyenv install 3.10.13') or set PYTHON310=/path/to/python3.10" >&2; \
	  exit 2; fi

$(UV): | check-python
	@echo "bootstrapping uv $(UV_VERSION) into $(TOOLS)/"
	@$(PY310) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(LOCK) setup.py | $(UV)
	@[ -x $(VENV)/bin/python ] || $(UV) venv --seed --python $(PY310) $(VENV)
	@# Bytecode at install time: PYTHONDONTWRITEBYTECODE is set on these machines, so
	@# without it every process recompiles TensorFlow & co. (~9 s of CPU per start).
	$(UV) pip sync --compile-bytecode --python $(VENV)/bin/python $(LOCK)
	$(UV) pip install --python $(VENV)/bin/python --no-deps -e .
	@touch $@

venv: $(STAMP)

lock: | $(UV)
	$(UV) pip compile --python $(PY310) --python-version 3.10 \
	  --python-platform x86_64-unknown-linux-gnu --extra all \
	  --no-emit-package tfx-anomaly-pipeline --custom-compile-command "make lock" -o $(LOCK) setup.py

run: $(STAMP)
	$(VENV)/bin/anomaly-pipeline run --data $(DATA) --label-column label --output $(OUTPUT) $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not e2e" $(PYTEST_ARGS)

docs: $(STAMP)
	$(VENV)/bin/python -m pipeline.cli.options_doc > docs/options.md

# Detection quality vs IsolationForest and the reference recipe, on the numeric
# tables and as user-shaped mixed tables (bench/mixed_tables.py); not a test.
# Subsets: DATASETS=cardio,thyroid SEEDS=0 VARIANTS=numeric (or mixed).
# MIXED_PARTS=coded,binned,noise,missing: what the mixed converter does (ablations).
DATA_DIR ?= ../shared/data
DATASETS ?=
SEEDS    ?= 0,1,2
RUN_ARGS ?=
VARIANTS ?= numeric,mixed
MIXED_PARTS ?=
.PHONY: bench-quality
bench-quality: $(STAMP)
	DATA_DIR="$(DATA_DIR)" DATASETS="$(DATASETS)" SEEDS="$(SEEDS)" RUN_ARGS="$(RUN_ARGS)" \
	  VARIANTS="$(VARIANTS)" MIXED_PARTS="$(MIXED_PARTS)" $(VENV)/bin/python bench/quality.py

# Pipeline vs the plain-script recipe at 10k/100k/1M rows, and score throughput
# (not a test). Subsets: SIZES=10000,100000. Writes bench/results/perf.{json,md}.
SIZES  ?= 10000,100000,1000000
EPOCHS ?= 5
BATCH  ?= 1024
REPEAT ?= 3
.PHONY: bench
bench: $(STAMP)
	SIZES="$(SIZES)" EPOCHS="$(EPOCHS)" BATCH="$(BATCH)" REPEAT="$(REPEAT)" \
	  $(VENV)/bin/python bench/perf.py

# The Airflow DAG (pipeline/runners/airflow_dag.py) for real: a temporary
# AIRFLOW_HOME with SQLite, `airflow db migrate`, `airflow dags test` on the
# bundled data with few epochs, then checks the run and the pushed model.
# Also part of `make test` (tests/e2e/test_airflow.py).
AIRFLOW_TEST_ARGS ?=
.PHONY: airflow-test
airflow-test: $(STAMP)
	$(VENV)/bin/python tests/e2e/run_airflow_dag.py $(AIRFLOW_TEST_ARGS)

# The DAG (--runner beam) and `score` with their Beam work on another host: Beam's
# portable job service and an EXTERNAL SDK worker pool in a network namespace of
# their own, the client in another, compared with a local run
# (tests/distributed/run_distributed.py). Needs root, `ip` and `unshare`; says
# SKIPPED otherwise. Also part of `make test` (tests/e2e/test_distributed.py).
# DIST_ARGS="--worker-deps staged": workers install the sdist the client stages.
DIST_ARGS ?=
.PHONY: test-distributed
test-distributed: $(STAMP)
	$(VENV)/bin/python -m tests.distributed.run_distributed $(DIST_ARGS)

clean:
	rm -rf $(OUTPUT) .pytest_cache
