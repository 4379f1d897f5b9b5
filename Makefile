# Two entry points for a fresh machine (see README.md):
#   make reproduce   set up .venv, run every notebook through papermill, write figures/
#   make test        set up .venv, lint, run the unit tests and the notebooks under nbval
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
DATASET ?= synthetic
DATA_ROOT ?=
# Published labels/predictions: a local copy when one sits beside the checkout (as in CI),
# otherwise they are downloaded from their upstream with checksums.
PUBLISHED_DIR ?= $(wildcard $(abspath ../shared/published))
export HANDPOSE_PUBLISHED_DIR := $(PUBLISHED_DIR)

.PHONY: setup reproduce test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

reproduce: setup
	$(PY) -m handpose_lib.reproduce --profile $(PROFILE) --dataset $(DATASET) \
		$(if $(DATA_ROOT),--data-root $(DATA_ROOT))

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

clean:
	rm -rf $(VENV) outputs .pytest_cache
