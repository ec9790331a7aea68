# The front door. Every target bootstraps the environment (.venv, from uv.lock) when missing.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)
TEST_STAMP := $(VENV)/.test-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export MPLBACKEND := Agg
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help env run test test-fast lab ui ui-check bench clean scheduled
DATASET ?= cdnow

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

.tools/bin/uv:
	@echo "uv not found: installing it into .tools/ with pip"
	$(PYTHON) -m venv .tools
	@# -qq: pip warns about find-links folders of the machine's own pip configuration; errors still show
	.tools/bin/pip install -qq uv

# --inexact: keeps the spark and team extras that `make test` and `make bench` add (run never needs them).
# --compile-bytecode: the .pyc files are written once here (about 20 s), not compiled again by
# every process that imports mlflow, scipy or pandas when Python may not write them
# (PYTHONDONTWRITEBYTECODE, read-only installs): a fast refresh of 05+06 takes 18.5 s instead of 28
SYNC := $(UV) sync --locked --inexact --compile-bytecode
# the team extra (the PostgreSQL driver, a few MB) is always there: a clone given a team.yaml
# (docs/team.md) works without another install step
$(STAMP): | $(UV)
	@echo "setting up .venv from uv.lock (once; uv prints only errors)"
	@$(SYNC) --quiet --extra team
	@rm -f $(VENV)/.synced-* && touch $(STAMP)

$(TEST_STAMP): | $(UV)
	@echo "setting up .venv from uv.lock with the spark and team extras for the tests (once)"
	@$(SYNC) --quiet --extra spark --extra team --group team-test
	@rm -f $(VENV)/.test-* $(VENV)/.synced-* && touch $(TEST_STAMP) $(STAMP)

env: $(STAMP) ## create or update .venv from uv.lock

run: $(STAMP) ## the refresh on the bundled CDNOW, Telco and Hillstrom data (reports/runs/, mlruns/, data/predictions/)
	$(VENV)/bin/urm refresh --dataset cdnow
	$(VENV)/bin/urm refresh --dataset telco
	$(VENV)/bin/urm refresh --dataset hillstrom

# What cron and systemd run (docs/scheduling.md): works from a fresh clone and a bare environment
# (it bootstraps .venv, creates reports/, reads the team setting from team.yaml, not from a shell).
# The log is the project home's (URM_HOME, else this clone): reports/cron.log. An environment older
# than uv.lock (after a git pull) is brought up to date from uv's cache, without the network; only a
# first bootstrap, or packages the cache lacks, need it (then the log says what to run).
# Exit 75 (another refresh holds the lock) is a skip, not a failure; a failure says where the log is.
HOME_DIR := $(or $(URM_HOME),$(CURDIR))
CRON_LOG := $(HOME_DIR)/reports/cron.log
scheduled: | $(UV) ## one refresh for cron or systemd: DATASET=... (default cdnow), output appended to reports/cron.log
	@umask 077 && mkdir -p "$(HOME_DIR)/reports" && echo "$$(date '+%Y-%m-%d %H:%M:%S %z') urm refresh --dataset $(DATASET)" >> "$(CRON_LOG)"
	@umask 077; if [ ! -f $(STAMP) ]; then \
	  if [ -x $(VENV)/bin/urm ]; then how="--offline"; else how=""; fi; \
	  if ! $(SYNC) --quiet --extra team $$how >> "$(CRON_LOG)" 2>&1; then \
	    echo "the environment could not be brought up to date with uv.lock$${how:+ from the cache of uv (no network is used here)}: run 'make env' once by hand with the network; behind a TLS-inspecting proxy set UV_SYSTEM_CERTS=1 or SSL_CERT_FILE (docs/scheduling.md)" >> "$(CRON_LOG)"; \
	    echo "urm refresh --dataset $(DATASET) failed (no environment): $(CRON_LOG)" >&2; exit 1; \
	  fi; rm -f $(VENV)/.synced-* && touch $(STAMP); fi
	@umask 077; $(VENV)/bin/urm refresh --dataset $(DATASET) --quiet >> "$(CRON_LOG)" 2>&1; code=$$?; \
	if [ $$code -eq 75 ]; then echo "skipped: another refresh holds the lock" >> "$(CRON_LOG)"; exit 0; \
	elif [ $$code -ne 0 ]; then echo "urm refresh --dataset $(DATASET) failed (exit $$code): $(CRON_LOG)" >&2; exit $$code; fi

test: $(TEST_STAMP) ## lint and format check (ruff), then the test suite (unit, property, fuzz, data, notebook, reliability, end-to-end)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=10 -v

# The unit tests: no papermill refresh or kernel, no Spark session, no PostgreSQL, no fresh clone, no
# full data set fitted many times over (markers `slow` and `integration`, pyproject.toml). Files start
# longest first (tests/conftest.py); --no-loadscope-reorder keeps that order (xdist would otherwise
# start the files with the most tests first, and the longest file last).
test-fast: $(TEST_STAMP) ## the unit tests only, under a minute (no refresh, Spark, PostgreSQL or fresh clone); `make test` runs them too
	$(VENV)/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder -m "not slow and not integration" -q --durations=5

# rooted at the project (notebooks/ opens first) so that the executed notebooks under reports/runs/ open too
lab: $(STAMP) ## JupyterLab on the project (notebooks/ first, reports/runs/ too) with the urm-models kernel
	$(VENV)/bin/python -c "from urm_models.jobs.pipeline import ensure_kernel; ensure_kernel()"
	$(VENV)/bin/jupyter lab --no-browser --ip 127.0.0.1 --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
	  $(if $(filter 0,$(shell id -u)),--allow-root,)

ui: $(STAMP) ## the MLflow UI on 127.0.0.1:5000 against the project's store (1 worker, no job runners)
	$(VENV)/bin/urm ui --host 127.0.0.1 --port 5000

# Outside `make test`: a real headless browser on the UI of the project's store (after `make run`);
# Debian's chromium is installed when missing (root, or a user allowed to run apt-get).
# Screenshots go to reports/ui-check/; DOCS=1 replaces the ones docs/team.md shows (docs/images/, tracked).
ui-check: $(STAMP) ## the MLflow UI seen by headless Chromium: runs and registry pages checked, screenshots in reports/ui-check/ (DOCS=1: docs/images/)
	@command -v chromium >/dev/null || (echo "installing Debian's chromium (once)" && apt-get install -y -qq chromium >/dev/null)
	$(VENV)/bin/python scripts/ui_check.py $(if $(DOCS),--images docs/images,)

$(BENCH_STAMP): | $(UV)
	$(SYNC) --group bench --extra spark --extra team
	@rm -f $(VENV)/.bench-* $(VENV)/.synced-* && touch $(BENCH_STAMP) $(STAMP)

bench: $(BENCH_STAMP) ## benchmarks; results go to docs/benchmarks.md by hand, with this command
	$(VENV)/bin/python benchmarks/run.py

clean: ## remove run outputs (reports, mlruns, predictions, quarantine); keeps .venv
	rm -rf reports mlruns data/predictions data/quarantine
