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

.PHONY: demo test lint format schema bench clean browser graphiql-assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(QUIET) -e '.[demo,test]'
	touch $@

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
	rm -rf $(VENV) .demo *.egg-info $(HTTP_AUDIT)/node_modules $(GRAPHQL_AGENCY)/node_modules \
	  $(FEDERATION)/node_modules
