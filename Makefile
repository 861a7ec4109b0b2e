# Two commands do everything on a fresh machine: `make report` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
EXPERIMENTS ?=
DATA_DIR ?= $(or $(CBV_DATA_DIR),data/raw)

.PHONY: setup data report test bench clean-reports

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

# Fetches the corpora from their public homes (verified by SHA-256); present files are kept.
data: setup
	$(PY) -m helpers download --data-dir $(DATA_DIR)

report: data
	$(PY) -m helpers report --profile $(PROFILE) --data-dir $(DATA_DIR) $(if $(EXPERIMENTS),--experiments $(EXPERIMENTS))

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m helpers bench

clean-reports:
	rm -rf reports
