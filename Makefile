# The project's front door. `make demo` and `make test` each set up everything first,
# so on a fresh machine each is one command.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
# pip's global config on these machines names local extra indexes that may be absent;
# the warnings about them are noise, real errors still fail the pipe.
PIP_QUIET := grep -v -e 'is ignored: it is neither a file nor a directory' || true

export RAGAS_DO_NOT_TRACK := true
export DAGSTER_DISABLE_TELEMETRY := true
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup demo test test-fast lint typecheck pytest pytest-fast bench bench-quick dagster clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned dependency set into $(VENV) ..."
	@$(BIN)/pip install --disable-pip-version-check --progress-bar off -q -r requirements.lock 2>&1 | $(PIP_QUIET)
	@$(BIN)/pip install --disable-pip-version-check --progress-bar off -q --no-deps --no-build-isolation -e . 2>&1 | $(PIP_QUIET)
	@$(BIN)/pip check
	@touch $(STAMP)

demo: setup
	$(BIN)/kb demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The whole suite runs on every CPU (pytest-xdist): each worker has its own embedded
# PostgreSQL; a module's tests stay on one worker (--dist loadscope), so module-scoped
# fixtures are built once; modules go out in collection order, where tests/conftest.py
# puts the slow ones first (--no-loadscope-reorder: xdist would send the modules with
# the most tests first, leaving the one-test demo run for the end).
# PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= logical

pytest: setup
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

# Everything: what CI runs (.ci/run).
test: lint typecheck pytest

# The fast tier (docs/development.md): no database, no slow or browser test; a few minutes.
FAST_TIER := not integration and not slow and not browser

pytest-fast: setup
	$(BIN)/pytest -q -m "$(FAST_TIER)"

test-fast: lint typecheck pytest-fast

# The benchmark suite (about an hour on 2 cores: a million-chunk index, 10,000 pages
# through the whole pipeline). Results: var/bench/results.json and summary.md;
# BENCH_ARGS=--publish also refreshes bench/results/ and docs/performance.md.
bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python -m bench.run --profile quick $(BENCH_ARGS)

# The Dagster UI on the embedded database, with the sample folder as the files source.
dagster: setup
	KB_FILES_DIR=$${KB_FILES_DIR:-samples/kb_files} $(BIN)/kb dagster dev

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
