"""The files that set up an environment agree with each other and pick a usable Python."""

import functools
import operator
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import handpose_lib

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


# --- pyproject.toml's ranges and the locks -------------------------------------------------

LINUX_LOCK = "requirements/lock-linux-x86_64.txt"
MACOS_LOCK = "requirements/lock-macos-arm64.txt"
# The lock of each supported platform (`uname -s`-`uname -m`, as the Makefile picks it), with the
# environment markers of that platform.
LOCKS = {
    "Linux-x86_64": (
        LINUX_LOCK,
        {
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
        },
    ),
    "Darwin-arm64": (
        MACOS_LOCK,
        {
            "sys_platform": "darwin",
            "platform_system": "Darwin",
            "platform_machine": "arm64",
            "os_name": "posix",
        },
    ),
}
OWN_NAME = canonicalize_name(PYPROJECT["project"]["name"])


def _requirements() -> list[Requirement]:
    """Every requirement of pyproject.toml: the dependencies and every extra's, less the
    extras that name other extras of handpose_lib itself."""
    project = PYPROJECT["project"]
    lines = project["dependencies"] + functools.reduce(
        operator.iadd, project["optional-dependencies"].values(), []
    )
    return [r for r in map(Requirement, lines) if canonicalize_name(r.name) != OWN_NAME]


def _lock(relative: str) -> dict[str, Version]:
    """name -> version of a lock file: one `name==version` per line, nothing else."""
    pins: dict[str, Version] = {}
    for line in (REPO_ROOT / relative).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, line
        assert specifiers[0].operator == "==", line
        assert requirement.marker is None, line
        assert not requirement.extras, line
        assert not requirement.url, line
        version = Version(specifiers[0].version)
        # no local tag (2.13.0+cpu): pip must find it on PyPI too, and `==2.13.0` accepts +cpu
        assert version.local is None, line
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{relative}: {name} twice"
        pins[name] = version
    return pins


def test_pyproject_declares_ranges_not_pins():
    for requirement in _requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert ">=" in operators, f"{requirement}: no lower bound"
        assert not operators & {"==", "==="}, f"{requirement}: pinned (the locks pin)"
        assert requirement.url is None, requirement


def test_extras_and_dev():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"notebooks", "test", "lint", "dev"} <= set(extras)
    # `pip install -e '.[dev]'` keeps giving everything
    (dev,) = extras["dev"]
    dev_requirement = Requirement(dev)
    assert canonicalize_name(dev_requirement.name) == OWN_NAME
    assert dev_requirement.extras == set(extras) - {"dev"}
    for line in functools.reduce(
        operator.iadd, extras.values(), []
    ):  # self-references name existing extras
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == OWN_NAME:
            assert requirement.extras <= set(extras), line


@pytest.mark.parametrize("platform", sorted(LOCKS))
def test_lock_satisfies_every_pyproject_requirement(platform):
    relative, markers = LOCKS[platform]
    lock = _lock(relative)
    assert OWN_NAME not in lock
    assert "pip" not in lock
    environment = default_environment() | markers | {"python_version": "3.11"}
    for requirement in _requirements():
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{relative} lacks {requirement}"
        assert requirement.specifier.contains(lock[name], prereleases=True), (
            f"{relative}: {name}=={lock[name]} is outside pyproject.toml's {requirement}"
        )


def test_locks_agree_with_each_other():
    """macOS's lock is resolved with Linux's as constraints: the same version of every
    package both hold, torch included."""
    linux, macos = _lock(LINUX_LOCK), _lock(MACOS_LOCK)
    assert linux["torch"] == macos["torch"]
    assert {name: macos[name] for name in linux.keys() & macos.keys()} == {
        name: linux[name] for name in linux.keys() & macos.keys()
    }
    assert len(linux.keys() & macos.keys()) >= len(linux) - 5  # a few platform-only packages


def test_locks_say_their_python():
    for relative, _ in LOCKS.values():
        assert "Python 3.11" in (REPO_ROOT / relative).read_text().split("\n\n")[0], relative


def test_conda_environment_installs_the_linux_lock():
    text = (REPO_ROOT / "environment.yml").read_text()
    assert re.search(r"^  - python=3\.11$", text, re.MULTILINE)  # the locks' Python
    pip_section = text.split("  - pip:\n", 1)[1]
    lines = [line.strip() for line in pip_section.splitlines() if line.strip()]
    assert lines == [f"- -r {LINUX_LOCK}", "- -e ."]
    assert (REPO_ROOT / LINUX_LOCK).is_file()


def test_python_versions_agree():
    """requires-python admits 3.11 and later; conda's Python and ruff's target lie inside."""
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    conda_python = re.search(r"- python=(3\.\d+)", (REPO_ROOT / "environment.yml").read_text())
    assert conda_python
    assert tuple(map(int, conda_python[1].split("."))) >= (3, 11)


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
    assert text.startswith("MIT License")
    assert "handpose_lib contributors" in text
    assert "\nlicense: MIT\n" in (REPO_ROOT / "CITATION.cff").read_text()
    # setuptools reads the SPDX string from 77 on (PEP 639)
    floor = re.fullmatch(r"setuptools>=(\d+)", PYPROJECT["build-system"]["requires"][0])
    assert floor
    assert int(floor[1]) >= 77


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
    assert good.returncode == 0
    assert f"at {sys.executable}" in good.stdout


# --- the Makefile's setup installs the lock -------------------------------------------------


def _setup_commands(tmp_path: Path, *args: str) -> str:
    """The commands `make setup` would run (make -n) into a new venv under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        [
            MAKE,
            "-n",
            "-C",
            str(REPO_ROOT),
            "setup",
            f"VENV={tmp_path / 'v'}",
            f"PYTHON={sys.executable}",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_makefile_stamp_depends_on_pyproject_and_lock():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(VENV\)/\.installed: pyproject\.toml \$\(LOCK\)$", makefile, re.M)
    assert f"LOCK := {LINUX_LOCK}" in makefile
    assert f"LOCK := {MACOS_LOCK}" in makefile


@needs_make
@pytest.mark.parametrize("platform", sorted(LOCKS))
def test_makefile_setup_installs_the_lock_then_the_package(tmp_path, platform):
    relative, _ = LOCKS[platform]
    commands = _setup_commands(tmp_path, f"PLATFORM={platform}")
    lock_install = commands.index(f"-m pip install --quiet -r {relative}\n")
    assert commands.index("-m pip install --quiet --no-deps -e .\n") > lock_install
    assert "[dev]" not in commands
    assert "--index-url" not in commands


@needs_make
def test_makefile_takes_torch_from_torch_index_at_the_lock_version(tmp_path):
    index = "https://example.invalid/whl/cpu"
    commands = _setup_commands(tmp_path, "PLATFORM=Linux-x86_64", f"TORCH_INDEX={index}")
    torch = _lock(LINUX_LOCK)["torch"]
    torch_install = commands.index(f"-m pip install --quiet torch=={torch} --index-url {index}\n")
    assert torch_install < commands.index(f"-r {LINUX_LOCK}")


@needs_make
def test_makefile_falls_back_to_the_ranges_elsewhere(tmp_path):
    commands = _setup_commands(tmp_path, "PLATFORM=Linux-riscv64")
    assert "warning: installing pyproject.toml's ranges, not a lock" in commands
    assert "this is Linux-riscv64" in commands
    assert "numbers may differ slightly" in commands
    assert "-m pip install --quiet -e '.[dev]'" in commands
    assert " -r " not in commands
