"""environment.yml and pyproject.toml must pin the same versions."""

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return dict(re.match(r"\s*([A-Za-z0-9_.-]+)==([^\s#\"]+)", line).groups() for line in lines)


def test_conda_environment_matches_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pyproject = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env_lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    conda = _pins(line.replace("- ", "", 1) for line in env_lines if "==" in line)
    assert conda == pyproject
