# Two commands for a newcomer: `make demo` (the main job end to end) and `make test` (the suite).
# Both create the virtualenv in .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SCALE ?= small
DATA ?= var/data/$(SCALE)

.PHONY: install test lint format demo serve clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q

demo: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/recsys demo --scale $(SCALE) --data $(DATA)

bench: $(STAMP)
	$(BIN)/python bench/bench_simulate.py

clean:
	rm -rf var .pytest_cache .ruff_cache .hypothesis
