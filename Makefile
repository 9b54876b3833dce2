# chronoforce — every target installs what it needs first (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What tests/deploy checks compose.yaml against: the Compose Specification's JSON schema, as the
# npm package dclint ships it (pinned in docker/package-lock.json).
COMPOSE_SCHEMA := docker/node_modules/dclint/schemas/compose.schema.json

.PHONY: install demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/chronoforce demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install $(COMPOSE_SCHEMA)
	$(BIN)/pytest

test: lint typecheck pytest

$(VENV)/.bench-installed: pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The Compose Specification's JSON schema (COMPOSE_SCHEMA, above) as dclint ships it.
$(COMPOSE_SCHEMA): docker/package-lock.json
	cd docker && npm ci --prefer-offline --no-audit --no-fund --silent
	touch $@
