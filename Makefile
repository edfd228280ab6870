# SLOP Platform. `make run` serves the platform on its embedded default; `make test` runs the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check system-deps bench bench-memory clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build; an unpinned torch pulls several GB of CUDA packages.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# redis-server is needed by the tests (they start their own on a free port).
system-deps:
	@command -v redis-server >/dev/null || { \
	  echo "Installing redis-server"; \
	  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null || \
	  { echo "Please install redis-server"; exit 1; }; }

run: $(STAMP)
	SLOP_DEBUG=$${SLOP_DEBUG:-true} SLOP_DEMO_PUBLIC_LOOPBACK=$${SLOP_DEMO_PUBLIC_LOOPBACK:-true} \
	  PORT=$(PORT) $(PY) manage.py serve --port $(PORT)

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	SECRET_KEY=$${SECRET_KEY:-typecheck-only} $(VENV)/bin/mypy apps slop_platform

check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/info.py

# Loads a million synthetic vectors and builds the HNSW index: tens of minutes on 2 cores.
bench-memory: $(STAMP)
	$(PY) bench/memory.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data/test
