# `make serve` and `make test` each bootstrap everything from a fresh clone:
# a virtual environment in .venv, the package, the models, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.facedb-installed
DEV    := $(VENV)/.facedb-dev-installed

.PHONY: install install-dev models test test-fast lint serve bench clean postgres

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing FaceDB and its packages into $(VENV) (about 1 GB on the first run)..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e .
	$(BIN)/python -c 'import facedb, fastapi_offline'
	touch $(STAMP)
	@echo "Installed. The command line is $(BIN)/facedb (or run: source $(BIN)/activate)."

install: $(STAMP)

# What `make serve` needs is the package; tests, linters and benchmarks add the dev tools.
$(DEV): $(STAMP)
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $(DEV)

install-dev: $(DEV)

models: install
	$(BIN)/facedb models install

# Start the local PostgreSQL cluster if this machine has one and it is down.
postgres:
	@if command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h | grep -q down; then \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; fi

# Two workers: most of the suite waits on databases, servers and subprocesses.
PYTEST := $(BIN)/python -m pytest -n 3 --dist worksteal

test: install-dev models postgres
	FACEDB_REQUIRE_POSTGRES=1 $(PYTEST)

# Everything but the real networks, the time-budgeted fuzzing, the tests on a real Milvus
# server (they start one) and the slow ones (a browser, kill -9, repeated races): 90 s.
test-fast: install-dev
	@echo "test-fast skips the models, budget, milvus_server and slow tests; make test runs them"
	$(PYTEST) -m "not models and not budget and not milvus_server and not slow"

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the rooms' layers (pyproject.toml, [tool.importlinter])

serve: models
	$(BIN)/facedb db upgrade
	$(BIN)/facedb serve

bench: install-dev models
	$(BIN)/python -m bench.pipeline_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
