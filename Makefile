# GSCo platform. `make demo` and `make test` work on a fresh machine (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?=
DEMO_HOME ?= $(CURDIR)/.demo
# Test processes (pytest-xdist); a test file never leaves its process, so module fixtures are built once.
TEST_WORKERS ?= 2

export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: setup test lint demo clean up down mutation

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,demo]'
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check gsco_common specialist site_agent registry gsco_runtime hub bench tests deploy
	$(BIN)/ruff format --check gsco_common specialist site_agent registry gsco_runtime hub bench tests deploy

test: setup lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=15

# Mutation testing of the trust core (long; not part of `make test`): see docs/testing.md.
mutation: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[mutation]'
	$(BIN)/python bench/mutation.py --write-docs
	$(BIN)/python bench/mutation.py --five-features --write-docs

demo: setup
	DATA="$(DATA)" DEMO_HOME="$(DEMO_HOME)" bash deploy/demo/run.sh

# The production topology on this machine (deploy/local/topology.yaml; GSCO_TOPOLOGY_* overrides).
up: setup
	$(BIN)/python -m deploy.local.topology up

down: setup
	$(BIN)/python -m deploy.local.topology down

clean:
	@if [ -e "$(DEMO_HOME)" ] && [ ! -f "$(DEMO_HOME)/.gsco-demo" ]; then \
	  echo "refusing to delete $(DEMO_HOME): not a folder made by make demo (no .gsco-demo marker)"; exit 2; fi
	rm -rf "$(DEMO_HOME)" .pytest_cache
