# The commands people and CI use. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The demo's two sample agency APIs listen on AGENCY_PORT and the next port; empty: 8101 and
# 8102, or free ports when either is taken. VERBOSE=1: pip's, PostgreSQL's and uvicorn's output.
AGENCY_PORT ?=
VERBOSE ?=
QUIET := $(if $(VERBOSE),,--quiet)

.PHONY: demo test lint format schema bench clean browser lock lock-upgrade test-latest graphiql-assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs exactly what requirements.lock pins (hash-checked), then the project without
# resolving anything again: every machine and CI run test the same releases.
LOCK := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock
$(VENV)/.installed: $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(QUIET) --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install $(QUIET) --no-deps -e '.[demo,test]'
	touch $@

# uv resolves the locks (pyproject.toml's ranges, every platform, Python 3.11+); it is a
# tool of `make lock` only, installed beside the project in .venv.
UV := $(BIN)/uv
UV_COMPILE := $(UV) pip compile pyproject.toml --universal --python-version 3.11 \
  --generate-hashes --quiet
$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'uv>=0.13,<0.14'

lock: | $(UV)  ## re-pin the locks after a change to pyproject.toml (keeps pins still in range)
	$(UV_COMPILE) --all-extras -o $(LOCK)
	$(UV_COMPILE) --constraint $(LOCK) -o $(RUNTIME_LOCK)

lock-upgrade: | $(UV)  ## re-pin the locks to the newest releases inside pyproject.toml's ranges
	$(UV_COMPILE) --all-extras --upgrade -o $(LOCK)
	$(UV_COMPILE) --constraint $(LOCK) -o $(RUNTIME_LOCK)

# The GraphQL-over-HTTP audit suite (npm graphql-http, pinned by the lock file) for the tests.
HTTP_AUDIT := tests/http-audit
$(HTTP_AUDIT)/node_modules/.installed: $(HTTP_AUDIT)/package.json $(HTTP_AUDIT)/package-lock.json
	npm ci --prefix $(HTTP_AUDIT) --no-audit --no-fund
	touch $@

# PostGraphile 4 (pinned by the lock file): the real GraphQL agency kind: graphql is tested against.
GRAPHQL_AGENCY := tests/graphql-agency
$(GRAPHQL_AGENCY)/node_modules/.installed: $(GRAPHQL_AGENCY)/package.json $(GRAPHQL_AGENCY)/package-lock.json
	npm ci --prefix $(GRAPHQL_AGENCY) --no-audit --no-fund
	touch $@

# Hive Gateway and Apollo Gateway (npm, pinned by the lock file) serving a supergraph that
# composes complaint-graph as a federation subgraph (tests/federation/test_supergraph.py).
FEDERATION := tests/federation
$(FEDERATION)/node_modules/.installed: $(FEDERATION)/package.json $(FEDERATION)/package-lock.json
	npm ci --prefix $(FEDERATION) --no-audit --no-fund
	touch $@

# The suite on the newest release of every dependency, upper bounds ignored, in its own venv:
# an upgrade that breaks shows here before anyone moves a range (ruff is not run: a newer
# ruff's new rules are style, not breakage).
LATEST := .venv-latest
test-latest: $(HTTP_AUDIT)/node_modules/.installed $(GRAPHQL_AGENCY)/node_modules/.installed \
  $(FEDERATION)/node_modules/.installed browser  ## the suite on the newest releases
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python .ci/unbounded_requirements.py pyproject.toml > $(LATEST)/requirements.txt
	$(LATEST)/bin/python -m pip install --quiet --upgrade -r $(LATEST)/requirements.txt
	$(LATEST)/bin/python -m pip install --quiet --no-deps -e .
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/tested.txt
	$(LATEST)/bin/mypy gateway resolvers sources samples
	$(if $(CI),COMPLAINT_GRAPH_REQUIRE_MYSQL=1 )$(LATEST)/bin/pytest

# Debian's chromium and Thai fonts for the dashboard's browser tests; installed when missing
# (CI runs as root and reaches Debian's package registry).
browser:
	@command -v chromium >/dev/null && dpkg -s fonts-thai-tlwg >/dev/null 2>&1 || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends chromium fonts-thai-tlwg)

demo: $(VENV)/.installed  ## start the gateway on the embedded demo agencies
	$(BIN)/complaint-graph demo --port $(PORT) $(if $(AGENCY_PORT),--agency-port $(AGENCY_PORT)) \
	  $(if $(VERBOSE),--verbose)

# On CI (CI set) the MariaDB agency's tests fail, rather than skip, when no server answers.
test: $(VENV)/.installed $(HTTP_AUDIT)/node_modules/.installed \
  $(GRAPHQL_AGENCY)/node_modules/.installed $(FEDERATION)/node_modules/.installed \
  browser  ## the whole suite, with lint and types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway resolvers sources samples
	$(if $(CI),COMPLAINT_GRAPH_REQUIRE_MYSQL=1 )$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway resolvers sources samples

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(VENV)/.installed  ## regenerate schema.graphql (and the subgraph's) from the code
	$(BIN)/complaint-graph schema > schema.graphql
	$(BIN)/complaint-graph schema --subgraph > schema.subgraph.graphql

# GraphiQL's scripts and styles, served by the gateway (no CDN): fetched with npm at the versions
# and hashes the installed strawberry's page pins, into gateway/static/graphiql/ with licences.
graphiql-assets: $(VENV)/.installed
	$(BIN)/python -m gateway.graphiql_assets

bench: $(VENV)/.installed  ## complaint-graph vs PostGraphile 4 vs its N+1 baseline (bench/README.md)
	$(BIN)/python -m bench http

clean:
	rm -rf $(VENV) $(LATEST) .demo *.egg-info $(HTTP_AUDIT)/node_modules \
	  $(GRAPHQL_AGENCY)/node_modules $(FEDERATION)/node_modules
