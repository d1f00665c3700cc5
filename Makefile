# modecov: `make bench` runs the default comparison, `make test` the tests.
# TORCH selects the torch requirement: the default is the CPU build of these machines;
# GPU users pass their own, e.g. `make bench TORCH=torch`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUITE ?= default
WORKERS ?= auto

.PHONY: bench test perf lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(BIN)/modecov run --suite $(SUITE) --workers $(WORKERS) --out results/$(SUITE) --rerun-stale
	$(BIN)/modecov report results/$(SUITE)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

perf: $(STAMP)
	$(BIN)/python -m pytest benchmarks -q -p no:cacheprovider -o addopts="" --benchmark-columns=median,ops -s

lint: $(STAMP)
	$(BIN)/ruff check modecov tests benchmarks
	$(BIN)/ruff format --check modecov tests benchmarks

clean:
	rm -rf $(VENV)
