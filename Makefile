# Open Data Policing: `make run` to start the platform, `make test` to test it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STOPS ?= 1000000

.PHONY: run test lint bench bench-ingest bench-api bench-operator screenshots services db venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

services:
	@bash scripts/ensure_services.sh

db: venv services
	$(PY) -m odp db setup

run: venv services db
	$(PY) -m odp run

# `make test TIER=unit` (or interface, e2e) runs one tier of the suite; the
# suite runs in TEST_WORKERS processes (pytest-xdist), each with its own
# database and vhost.
TEST_WORKERS ?= 2
test: venv
	$(if $(filter unit interface,$(TIER)),,ODP_NEED_BROWSER=1) bash scripts/ensure_services.sh
	$(PY) -m pytest -n $(TEST_WORKERS) $(if $(TIER),-m $(TIER))

lint: venv
	$(VENV)/bin/ruff check .

bench: bench-ingest bench-api bench-operator

bench-ingest: venv services db
	$(PY) -m bench.ingest --stops $(BENCH_STOPS)
	$(PY) -m bench.ingest_states

bench-api: venv services db
	$(PY) -m bench.api --stops $(BENCH_STOPS)

bench-operator: venv services db
	$(PY) -m bench.operator

# Screenshots of the running site (make run) into docs/screenshots/; ODP_URL
# names another site.
screenshots: venv
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) data bench-data .pytest_cache .ruff_cache
