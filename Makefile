# Open Data Policing: `make run` to start the platform, `make test` to test it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every package with its version and file hashes, transitive ones included:
# LOCK the runtime's (the image installs it), DEV_LOCK the runtime's and the
# development tools' (the virtual environment installs it). `make lock`
# writes both from pyproject.toml.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
BENCH_STOPS ?= 1000000

.PHONY: run test lint lock bench bench-ingest bench-api bench-operator screenshots services db venv clean

venv: $(STAMP)

# Exactly the locked versions, each file checked against its hash; then the
# project itself, editable, with nothing more (its dependencies are the lock's).
$(STAMP): pyproject.toml $(LOCK) $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Run `make lock` after changing a pin in pyproject.toml (adding, removing or
# bumping a dependency), and commit the two lock files with it; the stamp
# above then reinstalls every checkout's venv. Versions already locked stay
# where they still fit; `make lock LOCK_ARGS=--upgrade` moves the transitive
# ones to their latest. The dev lock is resolved under the runtime lock as a
# constraint, so both agree on every package they share. uv runs from a
# throwaway venv outside the project (LOCK_TOOL) and resolves for Linux and
# Python 3.11 whatever machine runs it.
UV_VERSION := 0.13.9
LOCK_TOOL ?= /tmp/odp-locktool
LOCK_FLAGS = --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	--custom-compile-command 'make lock' $(LOCK_ARGS)
lock:
	$(PYTHON) -m venv $(LOCK_TOOL)
	$(LOCK_TOOL)/bin/python -m pip install --quiet uv==$(UV_VERSION)
	$(LOCK_TOOL)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) -o $(LOCK)
	$(LOCK_TOOL)/bin/uv pip compile pyproject.toml --extra dev --constraint $(LOCK) \
		$(LOCK_FLAGS) -o $(DEV_LOCK)

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

# wrk is the load generator: installed here when missing (as root).
bench-api: venv db
	ODP_NEED_WRK=1 bash scripts/ensure_services.sh
	$(PY) -m bench.api --stops $(BENCH_STOPS)

bench-operator: venv services db
	$(PY) -m bench.operator

# Screenshots of the running site (make run) into docs/screenshots/; ODP_URL
# names another site.
screenshots: venv
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) data bench-data .pytest_cache .ruff_cache
