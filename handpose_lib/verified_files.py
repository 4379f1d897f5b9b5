"""Files known by their sha256: verification and checksummed download, shared by the registries
of published files (`published`) and of the package's shipped weights (`pretrained`).

A registry lists each file's relative path, sha256 and size. A file is read from a local copy
(verified) or from a download cache laid out like it; a file missing there is downloaded once
with pooch, which refuses a download whose sha256 differs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pooch
import requests

from handpose_lib.paths import REPO_ROOT


class ChecksumError(ValueError):
    """A file's sha256 differs from the registry: it is never used."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, expected_sha256: str) -> None:
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{path}: sha256 is {actual}, the registry expects {expected_sha256}; "
            "the file is corrupt or not the registered version, refusing to use it"
        )


def package_cache_dir(name: str) -> Path:
    """`data/cache/<name>` of this checkout (ignored by git); installed without a checkout,
    `<name>` in the user cache folder of the platform (pooch.os_cache)."""
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "data" / "cache" / name
    return Path(pooch.os_cache("handpose_lib")) / name


def local_file(local_dir: Path, relative_path: str, sha256: str, origin: str) -> Path:
    """`local_dir / relative_path`, verified; FileNotFoundError names the file and `origin`
    (how the local copy was configured) when it is missing."""
    path = local_dir / relative_path
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing from the local copy ({origin}); expected the registry's layout"
        )
    verify_checksum(path, sha256)
    return path


def download(url: str, sha256: str, relative_path: str, cache_dir: Path) -> Path:
    """`cache_dir / relative_path`, downloaded from `url` when it is missing or fails its
    checksum. ChecksumError for a download whose sha256 differs (nothing is kept);
    requests' exceptions pass through for the caller to word."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(
            url=url,
            known_hash=f"sha256:{sha256}",
            fname=relative_path,  # the cache is laid out like a local copy
            path=cache_dir,
            progressbar=False,
        )
    except ValueError as err:  # pooch's way of refusing a hash mismatch
        raise ChecksumError(
            f"{url}: the download's sha256 differs from the registry ({err}); refusing to use it"
        ) from None
    return cache_dir / relative_path


def failure_reason(err: requests.exceptions.RequestException) -> str:
    """A few words on why a download failed: "HTTP 404", "no connection: ...", "timed out"."""
    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code}"
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ConnectionError):
        detail = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
        return "no connection" + (f": {detail[1].strip()}" if detail else "")
    return type(err).__name__
