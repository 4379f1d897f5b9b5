"""Published ICVL / NYU test labels and earlier methods' predictions.

Every file is listed in `published_registry.tsv` (shipped with the package) with its
sha256 and its upstream address in xinghaochen/awesome-hand-pose-estimation at a pinned
commit. `fetch` downloads a file with pooch into a cache, or takes it from a local copy
(argument `local_dir` or environment variable HANDPOSE_PUBLISHED_DIR) laid out like
MANIFEST.tsv. Either way the checksum is verified: a mismatch is an error.

The files are in the community uvd format (`handpose_lib.uvd_format`).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from handpose_lib.joints import num_joints
from handpose_lib.uvd_format import FormatError, read_uvd

UPSTREAM_REPO = "xinghaochen/awesome-hand-pose-estimation"
UPSTREAM_COMMIT = "e297a6ea7fd557bd5701c97a3437c551c4b4fbce"
UPSTREAM_BASE_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"

ENV_LOCAL_DIR = "HANDPOSE_PUBLISHED_DIR"
ENV_CACHE_DIR = "HANDPOSE_CACHE_DIR"

# Frame ranges of the test sets in the order of the label files. ICVL's test set is the
# concatenation of test_seq_1 (702 frames) and test_seq_2 (894 frames).
TEST_SUBSETS: dict[str, dict[str, tuple[int, int]]] = {
    "icvl": {"all": (0, 1596), "test_seq_1": (0, 702), "test_seq_2": (702, 1596)},
    "nyu": {"all": (0, 8252)},
}


class ChecksumError(ValueError):
    """A file's sha256 differs from the registry: it is never used."""


@dataclass(frozen=True)
class PublishedFile:
    """One row of the registry. `method`, `venue`, `year` are empty for label files."""

    path: str  # relative path, as in MANIFEST.tsv: "<dataset>/results/<file>.txt"
    sha256: str
    bytes: int
    upstream_path: str
    dataset: str  # "icvl" | "nyu"
    kind: str  # "labels" | "test_list" | "sequence_labels" | "predictions"
    method: str
    venue: str
    year: int | None
    subset: str  # "all" or the name of the test subset the file covers

    @property
    def url(self) -> str:
        return UPSTREAM_BASE_URL + self.upstream_path

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    @property
    def frame_range(self) -> tuple[int, int]:
        return TEST_SUBSETS[self.dataset][self.subset]


@cache
def registry() -> tuple[PublishedFile, ...]:
    """Every published file, in MANIFEST order."""
    text = resources.files("handpose_lib").joinpath("published_registry.tsv").read_text()
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return tuple(
        PublishedFile(
            path=r["path"],
            sha256=r["sha256"],
            bytes=int(r["bytes"]),
            upstream_path=r["upstream_path"],
            dataset=r["dataset"],
            kind=r["kind"],
            method=r["method"],
            venue=r["venue"],
            year=int(r["year"]) if r["year"] else None,
            subset=r["subset"],
        )
        for r in rows
    )


def lookup(name: str) -> PublishedFile:
    """Registry entry by relative path ("nyu/results/X.txt") or file stem ("X")."""
    for entry in registry():
        if name in (entry.path, entry.stem):
            return entry
    raise KeyError(f"{name!r} is not in the published registry (published_registry.tsv)")


def prediction_entries(dataset: str) -> list[PublishedFile]:
    """All published prediction files of `dataset`."""
    return [e for e in registry() if e.dataset == dataset and e.kind == "predictions"]


def find_prediction(dataset: str, method: str) -> PublishedFile:
    """The prediction file of `method` (display name, e.g. "V2V-PoseNet") on `dataset`."""
    matches = [e for e in prediction_entries(dataset) if e.method == method]
    if len(matches) != 1:
        known = sorted(e.method for e in prediction_entries(dataset))
        raise KeyError(f"no single {dataset} prediction file for {method!r}; known: {known}")
    return matches[0]


def _entry_of_kind(dataset: str, kind: str) -> PublishedFile:
    return next(e for e in registry() if e.dataset == dataset and e.kind == kind)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """HANDPOSE_CACHE_DIR, else `data/cache/published` of this checkout (ignored by git)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "cache" / "published"


def resolve_local_dir(local_dir: str | os.PathLike | None = None) -> Path | None:
    """The local copy to read from: the argument, else HANDPOSE_PUBLISHED_DIR, else None."""
    if local_dir is not None:
        return Path(local_dir)
    env = os.environ.get(ENV_LOCAL_DIR)
    return Path(env) if env else None


def fetch(
    entry: PublishedFile | str,
    local_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Path of a verified copy of a published file.

    With a local copy (argument or HANDPOSE_PUBLISHED_DIR) the file is read from there and
    its sha256 checked; otherwise pooch downloads it from the pinned upstream commit into
    the cache and checks it. A mismatch raises ChecksumError in both cases.
    """
    if isinstance(entry, str):
        entry = lookup(entry)
    local = resolve_local_dir(local_dir)
    if local is not None:
        path = local / entry.path
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: missing from the local copy of the published files "
                f"({ENV_LOCAL_DIR}={local}); expected the layout of MANIFEST.tsv"
            )
        verify_checksum(path, entry.sha256)
        return path

    import pooch  # imported here: only downloads need it

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        downloaded = pooch.retrieve(
            url=entry.url,
            known_hash=f"sha256:{entry.sha256}",
            fname=entry.path.replace("/", "__"),
            path=cache,
            progressbar=False,
        )
    except ValueError as err:  # pooch's way of refusing a hash mismatch
        raise ChecksumError(f"{entry.url}: {err}") from err
    return Path(downloaded)


def verify_checksum(path: Path, expected_sha256: str) -> None:
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{path}: sha256 is {actual}, the registry expects {expected_sha256}; "
            "the file is corrupt or not the published version, refusing to use it"
        )


def test_frame_count(dataset: str) -> int:
    return TEST_SUBSETS[dataset]["all"][1]


def subset_for_frame_count(dataset: str, frames: int, path: str | os.PathLike = "") -> str:
    """Name of the test subset a file with `frames` lines covers ("all", "test_seq_1", ...)."""
    for name, (start, stop) in TEST_SUBSETS[dataset].items():
        if stop - start == frames:
            return name
    sizes = ", ".join(
        f"{stop - start} ({name})" for name, (start, stop) in TEST_SUBSETS[dataset].items()
    )
    raise FormatError(f"{path}: {frames} frames, expected one of {sizes} for {dataset}")


def load_labels(dataset: str, local_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Ground-truth test labels uvd (N, J, 3): ICVL (1596, 16, 3), NYU (8252, 14, 3)."""
    path = fetch(_entry_of_kind(dataset, "labels"), local_dir=local_dir)
    return read_uvd(path, num_joints(dataset), expected_frames=test_frame_count(dataset))


def load_test_list(dataset: str, local_dir: str | os.PathLike | None = None) -> list[str]:
    """Image names of the test frames, in label order."""
    path = fetch(_entry_of_kind(dataset, "test_list"), local_dir=local_dir)
    names = path.read_text().split()
    if len(names) != test_frame_count(dataset):
        raise FormatError(f"{path}: {len(names)} names, expected {test_frame_count(dataset)}")
    return names


def load_uvd_file(path: str | os.PathLike, dataset: str) -> tuple[np.ndarray, str]:
    """Read a prediction file of any origin; returns uvd (N, J, 3) and the subset it covers."""
    uvd = read_uvd(path, num_joints(dataset))
    return uvd, subset_for_frame_count(dataset, len(uvd), path)
