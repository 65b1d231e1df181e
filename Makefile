# parkpulse: `make run` runs the embedded stack, `make test` runs lint + the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/parkpulse run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

system-deps:
	@./scripts/system-deps.sh

# Two pytest processes (pytest-xdist), a test file's tests in one of them: the integration
# tests mostly wait on real parts, and the suite takes ~2/3 of its serial time on 2 cores.
PYTEST_WORKERS ?= 2

test: lint system-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/parkpulse bench $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
