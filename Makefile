# Entry points for a fresh machine (see README.md):
#   make reproduce   set up .venv, run every notebook through papermill, write figures/
#   make test        set up .venv, lint, run the unit tests and the notebooks under nbval
#   make lab         set up .venv, register its kernel, open the notebooks in JupyterLab
# Written for GNU Make 3.81 and later (the make of macOS).

# The interpreter that creates .venv: the first of PYTHON_CANDIDATES that is Python 3.11 to
# 3.14 (every pinned dependency has wheels for those), or the one named: make PYTHON=python3.12
PYTHON_CANDIDATES ?= python3.11 python3.12 python3.13 python3.14 python3
PYTHON_RANGE := (3, 11) <= sys.version_info[:2] <= (3, 14)
supported = $(1) -c 'import sys; sys.exit(not ($(PYTHON_RANGE)))' >/dev/null 2>&1
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell command -v $(p) >/dev/null 2>&1 && $(call supported,$(p)) && echo $(p))))
endif

VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
DATASET ?= synthetic
DATA_ROOT ?=
CENTERS ?=
# pose: notebook 04 evaluates the shipped long-budget self-comparison; all: it retrains it too
RETRAIN ?=
# how many of notebook 04's trainings run at once (with RETRAIN=all)
JOBS ?=
# Optional: a PyTorch wheel index to take torch from (same pinned version), e.g. the CPU-only
# build on Linux: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_VERSION = $(shell sed -n 's/^ *"torch==\([^"]*\)".*/\1/p' pyproject.toml)
LAB_ARGS ?=
# The published labels/predictions come from a local copy when one is configured
# (HANDPOSE_PUBLISHED_DIR, or ../shared/published beside the checkout), otherwise from the
# download cache (handpose_lib/published.py decides; nothing to set here).

.PHONY: setup reproduce test lint lab which-python clean

# Says which interpreter creates .venv, or why none can.
define CHECK_PYTHON
if [ -z "$(PYTHON)" ]; then \
  echo "error: no Python 3.11 to 3.14 found on PATH (tried: $(PYTHON_CANDIDATES))." >&2; \
  echo "Install one (python.org, your package manager, pyenv or uv) and run make again," >&2; \
  echo "or name it: make $(MAKECMDGOALS) PYTHON=/path/to/python3.12" >&2; \
  exit 1; \
fi; \
if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' >/dev/null 2>&1; then \
  echo "error: PYTHON=$(PYTHON) does not run as Python 3.11 or newer (`$(PYTHON) --version 2>&1`)." >&2; \
  exit 1; \
fi; \
version=`$(PYTHON) -c 'import platform, sys; print(platform.python_version(), "at", sys.executable)'`; \
echo "using $(PYTHON): Python $$version"; \
if ! $(call supported,$(PYTHON)); then \
  echo "warning: the pins are tested with Python 3.11 to 3.14; wheels may be missing for this one" >&2; \
fi
endef

which-python:
	@$(CHECK_PYTHON)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet torch==$(TORCH_VERSION) --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

reproduce: setup
	$(PY) -m handpose_lib.reproduce --profile $(PROFILE) --dataset $(DATASET) \
		$(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(CENTERS),--centers $(CENTERS)) \
		$(if $(RETRAIN),--retrain $(RETRAIN)) $(if $(JOBS),--jobs $(JOBS))

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# Interactive use: the kernel "Python (handpose)" runs this .venv. Figures written from
# JupyterLab go to outputs/interactive/figures, so figures/ keeps the default run's.
lab: setup
	$(PY) -m ipykernel install --sys-prefix --name handpose --display-name "Python (handpose)" >/dev/null
	HANDPOSE_FIGURES_DIR="$(abspath outputs/interactive/figures)" \
		$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/01_data_preparation.ipynb

clean:
	rm -rf $(VENV) outputs .pytest_cache
