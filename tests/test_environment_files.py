"""The files that set up an environment agree with each other and pick a usable Python."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import handpose_lib

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _pins(lines):
    return dict(re.match(r"\s*([A-Za-z0-9_.-]+)==([^\s#\"]+)", line).groups() for line in lines)


def test_conda_environment_matches_pyproject():
    project = PYPROJECT["project"]
    pyproject = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env_lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    conda = _pins(line.replace("- ", "", 1) for line in env_lines if "==" in line)
    assert conda == pyproject


def test_every_dependency_is_pinned_exactly():
    project = PYPROJECT["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^\s]*", requirement), requirement


def test_python_versions_agree():
    """requires-python admits 3.11 and later; conda's Python and ruff's target lie inside."""
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    conda_python = re.search(r"- python=(3\.\d+)", (REPO_ROOT / "environment.yml").read_text())
    assert conda_python and tuple(map(int, conda_python[1].split("."))) >= (3, 11)


def test_version_is_single_sourced():
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "handpose_lib.__version__"
    }
    citation = (REPO_ROOT / "CITATION.cff").read_text()
    assert f'\nversion: "{handpose_lib.__version__}"\n' in citation


def test_licence_file_matches_the_declared_licence():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "handpose_lib contributors" in text
    assert "\nlicense: MIT\n" in (REPO_ROOT / "CITATION.cff").read_text()
    # setuptools reads the SPDX string from 77 on (PEP 639)
    floor = re.fullmatch(r"setuptools>=(\d+)", PYPROJECT["build-system"]["requires"][0])
    assert floor and int(floor[1]) >= 77


# --- the Makefile's choice of interpreter -----------------------------------------------

MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _shim(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _which_python(path_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`make which-python` with only `path_dir` on PATH (so no real python3.x is found)."""
    return subprocess.run(
        [MAKE, "-s", "-C", str(REPO_ROOT), "which-python", *args],
        env={"PATH": str(path_dir), "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_make
def test_makefile_takes_the_first_supported_interpreter(tmp_path):
    _shim(tmp_path, "python3.11", "exit 1")  # e.g. a broken or wrong python3.11
    _shim(tmp_path, "python3.12", f'exec "{sys.executable}" "$@"')  # this Python: supported
    _shim(tmp_path, "python3", f'exec "{sys.executable}" "$@"')
    result = _which_python(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("using python3.12: Python 3.")


@needs_make
def test_makefile_says_what_to_do_when_no_interpreter_fits(tmp_path):
    _shim(tmp_path, "python3", "exit 1")  # e.g. Python 3.10 fails the version check
    result = _which_python(tmp_path)
    assert result.returncode != 0
    assert "no Python 3.11 to 3.14 found on PATH" in result.stderr
    assert "PYTHON=/path/to/python3.12" in result.stderr


@needs_make
def test_makefile_checks_an_interpreter_given_by_name(tmp_path):
    _shim(tmp_path, "old-python", 'echo "Python 3.10.13"; exit 1')
    result = _which_python(tmp_path, f"PYTHON={tmp_path / 'old-python'}")
    assert result.returncode != 0
    assert "does not run as Python 3.11 or newer (Python 3.10.13)" in result.stderr
    good = _which_python(tmp_path, f"PYTHON={sys.executable}")
    assert good.returncode == 0 and f"at {sys.executable}" in good.stdout
