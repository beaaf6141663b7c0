# The two commands of the README: `make run` and `make test`.
# Both create .venv on first use and install posemu into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/posemu run scenarios/

# Four workers on any machine: the real-time tests (tests/realtime) mostly wait on the
# wall clock, so two cores keep four busy; worksteal evens out the long ones.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 4 --dist worksteal

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

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
