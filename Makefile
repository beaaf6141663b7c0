# The two commands of the README: `make run` and `make test`.
# Both create .venv on first use and install posemu into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/posemu run scenarios/

# Four workers on any machine: the real-time tests (tests/realtime) mostly wait on the
# wall clock, so two cores keep four busy; worksteal evens out the long ones.
test: $(STAMP) lint browser
	$(BIN)/python -m pytest -q -n 4 --dist worksteal

# Headless Chromium for the HTML report's browser tests (tests/frontends/test_html_browser.py):
# Debian's package, installed when missing and running as root (as CI does); elsewhere
# those tests skip, saying why.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null) || echo "chromium could not be installed: the browser tests will skip"; \
	else echo "no chromium (install Debian's chromium package): the browser tests will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Speed and scale (docs/performance.md); takes a few minutes, one core at a time.
bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/fresh.py
	$(BIN)/python benchmarks/coldstart.py
	$(BIN)/python benchmarks/fidelity.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/html_report.py
	$(BIN)/python benchmarks/long_run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
