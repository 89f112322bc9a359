# Two commands set up everything on a fresh machine (Python 3.11, Node 20):
#   make demo   - install what is missing, run the end-to-end demo on a local anvil chain
#                 (with the LeNet-class CNN: its 2^15 ceremony is built once, ~30 min, when none is cached)
#   make test   - install what is missing, run forge and pytest
# Installs are project-local (.venv/, node_modules/) and pinned (constraints.txt,
# package-lock.json); stamps make the second run skip them in well under a second.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FORGE := node_modules/@foundry-rs/forge-linux-amd64/bin/forge
PYTEST_ARGS ?=

.PHONY: setup chromium test test-forge test-py demo bench lint clean

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

# The browser tests (tests/browser) drive Debian's chromium through Playwright (Playwright's own
# browser download is not reachable). Installed here when missing, as root through apt; a
# no-op (a `command -v`) when it is already there.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "tests/browser need Chromium and apt-get is not available: install Chromium and put it on PATH as 'chromium' (or set ORACLE_CHROMIUM=/path/to/chrome)"; exit 1; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "tests/browser need Debian's chromium: run 'sudo apt-get install -y chromium' (make installs it only when run as root)"; exit 1; \
	else \
	  echo "installing Debian's chromium for tests/browser"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
	    || { echo "apt-get could not install chromium (see above)"; exit 1; }; \
	fi

test: setup chromium
	$(FORGE) test
	$(PY) -m pytest $(PYTEST_ARGS)

test-forge: node_modules/.stamp
	$(FORGE) test

test-py: setup chromium
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) scripts/demo.py --with-lenet

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
