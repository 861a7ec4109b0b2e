# Two commands do everything on a fresh machine: `make report` and `make test`; `make results`
# renders the committed study without training anything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
EXPERIMENTS ?=
DATA_DIR ?= $(or $(CBV_DATA_DIR),data/raw)

.PHONY: setup data report results reference test lint readme bench clean-reports

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

# Fetches the corpora from their public homes (verified by SHA-256); present files are kept.
# With EXPERIMENTS set, only the corpora those experiments read.
data: setup
	$(PY) -m helpers download --data-dir $(DATA_DIR) $(if $(EXPERIMENTS),--experiments $(EXPERIMENTS))

report: data
	$(PY) -m helpers report --profile $(PROFILE) --data-dir $(DATA_DIR) $(if $(EXPERIMENTS),--experiments $(EXPERIMENTS))

# The committed reference run (results/, its stored tables) rendered into reports/: trains
# nothing (--stored-only: a run not stored is listed, never computed, and runs are read under
# the compute they were made with), and leaves `git status` clean (a figure is rewritten only
# when its bytes change).
results: data
	$(PY) -m helpers report --profile reference --stored-only --results-dir results --data-dir $(DATA_DIR) $(if $(EXPERIMENTS),--experiments $(EXPERIMENTS))

# The committed reference run (ten seeds on the core comparisons) into results/: stored
# runs are skipped, so it can be completed in pieces; then the README's results from it.
WORKERS ?= 2  # the faster layout on this 2-core CPU: two workers at one thread, 1.25x one worker at two threads (docs/performance.md)
reference: data
	$(PY) -m helpers run --profile reference --workers $(WORKERS) --data-dir $(DATA_DIR) --reports-dir results $(if $(EXPERIMENTS),--experiments $(EXPERIMENTS))
	$(PY) -m helpers readme --profile reference --results-dir results --data-dir $(DATA_DIR)

test: setup
	$(PY) -m pytest -q

# ruff (lint and format check), configured in pyproject.toml; CI runs it before the tests.
lint: setup
	$(VENV)/bin/ruff check helpers tools tests
	$(VENV)/bin/ruff format --check helpers tools tests

# Rewrites README.md's results section from the stored runs of PROFILE (explicit, never a side effect).
readme: setup
	$(PY) -m helpers readme --profile $(PROFILE)

bench: setup
	$(PY) -m helpers bench

clean-reports:
	rm -rf reports
