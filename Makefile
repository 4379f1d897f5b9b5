# Entry points for a fresh machine (see README.md; `make help` lists every target):
#   make reproduce   set up .venv, run every notebook through papermill, write figures/
#   make test        set up .venv, lint, run the unit tests and the notebooks under nbval
#   make test-fast   set up .venv, run the unit tests less the slow, notebook and published ones
#   make lab         set up .venv, register its kernel, open the notebooks in JupyterLab
# .venv holds the exact versions of requirements/lock-<platform>.txt (Linux x86_64, macOS
# arm64); elsewhere pyproject.toml's ranges. `pip install .` into your own environment takes
# the ranges and keeps what is installed there.
# Written for GNU Make 3.81 and later (the make of macOS).

# The interpreter that creates .venv: the first of PYTHON_CANDIDATES that is Python 3.11 to
# 3.14 (every package of the locks has wheels for those), or the one named: make PYTHON=python3.12
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
# how many of notebook 04's trainings run at once (with RETRAIN=all; default: one per visible
# GPU, 1 on a CPU)
JOBS ?=
# a subset of the notebooks by number, e.g. NOTEBOOKS=01,02,03,05 (default: all)
NOTEBOOKS ?=
# notebook 04: seeds per variant and the variants compared (default: the profile's, all four)
SEEDS ?=
VARIANTS ?=
# where the notebooks train: auto (CUDA when usable), cuda or cpu (the paper profiles refuse a
# CPU unless it is named: DEVICE=cpu)
DEVICE ?=
# the run folder (default outputs/<profile>-<dataset>, make rehearse: ...-rehearsal)
OUTPUT ?=
# The lock of this platform: the exact versions the committed numbers were measured with (the
# Linux one) or resolved from them (macOS). Elsewhere LOCK is empty and setup installs
# pyproject.toml's ranges, with a warning. `make setup LOCK=` does that on any platform.
PLATFORM ?= $(shell uname -s 2>/dev/null)-$(shell uname -m 2>/dev/null)
ifeq ($(origin LOCK),undefined)
ifeq ($(PLATFORM),Linux-x86_64)
LOCK := requirements/lock-linux-x86_64.txt
else ifeq ($(PLATFORM),Darwin-arm64)
LOCK := requirements/lock-macos-arm64.txt
else
LOCK :=
endif
endif
# Optional: a PyTorch wheel index to take torch from (the lock's version), e.g. the CPU-only
# build on Linux: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_VERSION = $(shell sed -n 's/^torch==\([^ ;]*\).*/\1/p' $(or $(LOCK),requirements/lock-linux-x86_64.txt))
LAB_ARGS ?=
# The published labels/predictions come from a local copy when one is configured
# (HANDPOSE_PUBLISHED_DIR, or ../shared/published beside the checkout), otherwise from the
# download cache (handpose_lib/published.py decides; nothing to set here).

.PHONY: help setup reproduce rehearse test test-fast lint format hooks lab which-python clean

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

# `make` alone runs the first target, this one.
which-python: ## say which Python creates .venv (or why none can)
	@$(CHECK_PYTHON)

help: ## list the targets
	@echo "make TARGET [PROFILE=cpu DATASET=synthetic PYTHON=... TORCH_INDEX=... LOCK=...]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "lock for $(PLATFORM): $(or $(LOCK),none (pyproject.toml's ranges))"

setup: $(VENV)/.installed ## create .venv: the lock's exact versions, then handpose_lib (editable)

# The lock first (torch from TORCH_INDEX when given: the lock's `torch==X` accepts X+cpu), then
# the checkout itself, editable so that the notebooks import it, without touching the lock's
# versions. A change to pyproject.toml or the lock sets up again.
$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet torch==$(TORCH_VERSION) --index-url $(TORCH_INDEX))
ifneq ($(LOCK),)
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
else
	@echo "warning: installing pyproject.toml's ranges, not a lock (locks: Linux-x86_64," >&2
	@echo "Darwin-arm64; this is $(PLATFORM)): the numbers may differ slightly from the committed ones" >&2
	$(PY) -m pip install --quiet -e '.[dev]'
endif
	touch $@

reproduce: setup ## run every notebook through papermill, write figures/ (PROFILE, DATASET, ...)
	$(PY) -m handpose_lib.reproduce --profile $(PROFILE) --dataset $(DATASET) \
		$(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(CENTERS),--centers $(CENTERS)) \
		$(if $(RETRAIN),--retrain $(RETRAIN)) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(VARIANTS),--variants $(VARIANTS)) $(if $(DEVICE),--device $(DEVICE)) \
		$(if $(OUTPUT),--output $(OUTPUT))

# Before paying for hours of GPU time: every stage of that run at its sizes for a few steps,
# then what the full run will cost on this machine (handpose_lib/rehearsal.py).
rehearse: setup ## rehearse PROFILE's full route in minutes, project its cost (DATASET, DATA_ROOT)
	$(PY) -m handpose_lib.reproduce --rehearse --profile $(PROFILE) --dataset $(DATASET) \
		$(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(CENTERS),--centers $(CENTERS)) \
		$(if $(DEVICE),--device $(DEVICE)) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(OUTPUT),--output $(OUTPUT))

lint: setup ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

hooks: setup ## install the pre-commit hooks (ruff, ruff format, notebooks without outputs)
	$(VENV)/bin/pre-commit install

format: setup ## ruff format, then ruff check --fix (what is left to fix by hand is listed)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# One worker per core; conftest.py's scheduler keeps the notebooks (in order) and each test
# module on one worker.
TEST_WORKERS ?= auto
# The tests start about 40 Python processes (kernels, torchrun, pool workers) that import the
# package: bytecode caches (__pycache__/, ignored by git) spare each of them compiling it again,
# also where the environment says PYTHONDONTWRITEBYTECODE (as this project's machines do).
TEST_ENV := PYTHONDONTWRITEBYTECODE=
test: setup lint ## lint, the unit tests and every notebook under nbval, on every core
	$(TEST_ENV) $(PY) -m pytest -n $(TEST_WORKERS) tests notebooks \
		--nbval-lax --nbval-current-env --durations=25

test-fast: setup ## the unit tests less the slow, notebook and published-file ones
	$(TEST_ENV) $(PY) -m pytest -n $(TEST_WORKERS) -m "not slow and not notebooks and not published" tests

# Interactive use: the kernel "Python (handpose)" runs this .venv. Figures written from
# JupyterLab go to outputs/interactive/figures, so figures/ keeps the default run's.
lab: setup ## JupyterLab on .venv's kernel "Python (handpose)", notebook 01 opened
	$(PY) -m ipykernel install --sys-prefix --name handpose --display-name "Python (handpose)" >/dev/null
	HANDPOSE_FIGURES_DIR="$(abspath outputs/interactive/figures)" \
		$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/01_data_preparation.ipynb

clean: ## remove .venv, outputs/ and .pytest_cache
	rm -rf $(VENV) outputs .pytest_cache
