"""The layout page (docs/layout.md, linked from the README) is the module map: every module of
the package is listed."""

from __future__ import annotations

import re

from handpose_lib.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "handpose_lib"


def _layout_section() -> str:
    text = (REPO_ROOT / "docs" / "layout.md").read_text()
    start = text.index("## Layout")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_module_is_in_the_readme_layout():
    section = _layout_section()
    listed = set(re.findall(r"[\w]+\.(?:py|tsv|typed)", section))
    # Sub-packages whose modules are listed on one line by name ("preprocess/ segmentation ...").
    grouped = {"preprocess", "models"}
    missing = []
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".tsv", ".typed") or path.name == "__init__.py":
            continue
        if "__pycache__" in path.parts:
            continue
        package = path.parent.name
        if package in grouped:
            if path.stem not in section:
                missing.append(str(path.relative_to(REPO_ROOT)))
        elif path.name not in listed:
            missing.append(str(path.relative_to(REPO_ROOT)))
    assert not missing, f"modules missing from docs/layout.md: {missing}"
