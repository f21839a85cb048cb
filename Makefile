# The README's commands. Everything runs from the repo root with the project's own .venv; the
# Dagster targets are aliases of the plain Dagster commands, which need no environment (state goes
# to .data/ either way). DAGSTER_HOME=the repo root only saves Dagster a temporary home folder.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
export PYTHONWARNINGS ?= ignore::DeprecationWarning,ignore::UserWarning

.PHONY: install run test dev daemon defs serve e2e bench lint validate discover image clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install  ## seed the demo source and materialize every asset on the embedded default
	$(BIN)/python -m warehouse_assets.run

test: install  ## the whole suite (service tests need MariaDB and PostgreSQL; CI=true forbids skips)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

dev: install  ## `dg dev`: Dagster UI (http://127.0.0.1:3000) and daemon on the embedded default
	$(BIN)/dg dev -h 127.0.0.1 -p 3000

daemon: install  ## `dagster-daemon run` alone (schedules, sensors, run queue), beside `make serve`
	$(BIN)/dagster-daemon run

defs: install  ## `dg list defs`: every asset, check, schedule, sensor and resource
	$(BIN)/dg list defs

serve: install  ## the UI and GraphQL API behind a password (DAGSTER_UI_USER, DAGSTER_UI_PASSWORD) on :3000
	$(BIN)/python -m warehouse_assets.serve --port 3000

e2e: install  ## the UI in headless Chromium (installs Debian's chromium and Playwright if missing)
	.ci/e2e-setup
	E2E=1 $(BIN)/python -m pytest warehouse_assets_tests/e2e $(PYTEST_ARGS)

bench: install  ## replication speed and memory vs mariadb/psql limits (BENCH_NPS_ROWS, BENCH_WIDE_ROWS, BENCH_REPEATS); Google Sheets rows/s (BENCH_SHEET_ROWS)
	RUST_BACKTRACE=0 $(BIN)/python bench/run.py
	$(BIN)/python bench/definitions.py
	$(BIN)/python bench/sheets.py

discover: install  ## print replication entries for a source schema (SCHEMA=prod; ARGS=--write merges them)
	$(BIN)/python -m warehouse_assets.discover --schema $(or $(SCHEMA),prod) $(ARGS)

validate: install  ## `dg check defs`: the definitions load
	$(BIN)/dg check defs

lint: install
	$(BIN)/ruff check .

image:  ## the code location's image for deploy/dagster-ecs.yaml (EXTRAS=k8s INSTANCE=deploy/dagster-k8s.yaml for Kubernetes)
	docker build -t warehouse_assets --build-arg EXTRAS=$(EXTRAS) \
		--build-arg INSTANCE=$(or $(INSTANCE),deploy/dagster-ecs.yaml) .

clean:
	rm -rf .data
