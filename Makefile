# Two commands set up everything on a fresh machine (Python 3.11, Node 20):
#   make demo   - install what is missing, run the end-to-end demo on a local anvil chain
#   make test   - install what is missing, run forge and pytest
# Installs are project-local (.venv/, node_modules/) and pinned (constraints.txt,
# package-lock.json); stamps make the second run skip them in well under a second.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FORGE := node_modules/@foundry-rs/forge-linux-amd64/bin/forge
PYTEST_ARGS ?=

.PHONY: setup test test-forge test-py demo bench lint clean

setup: $(VENV)/.stamp node_modules/.stamp

$(VENV)/.stamp: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@test -x $(FORGE) || { echo "forge binary missing from node_modules (optional deps skipped?)"; exit 1; }
	@touch $@

test: setup
	$(FORGE) test
	$(PY) -m pytest $(PYTEST_ARGS)

test-forge: node_modules/.stamp
	$(FORGE) test

test-py: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) scripts/demo.py

bench: setup
	$(PY) bench/bench_gas.py
	$(PY) bench/bench_circuits.py
	$(PY) bench/bench_service.py
	$(PY) bench/bench_subnet.py
	$(PY) bench/bench_crosschain.py
	$(PY) bench/bench_ezkl.py --models risk digits

lint: setup
	$(VENV)/bin/ruff check oracle listeners relayer tests bench scripts models
	$(VENV)/bin/mypy

clean:
	rm -rf out cache build
