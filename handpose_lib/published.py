"""Published ICVL / NYU test labels, earlier methods' predictions and community hand centres.

Every file is listed in `published_registry.tsv` (shipped with the package) with its sha256 and
size, and with its own pinned upstream address: the GitHub repository that published it
(`repository`, "owner/name"), the commit (`commit`, 40 hex digits) and the file's path in that
repository at that commit (`upstream_path`). The files come from several repositories: the
labels and most predictions from the evaluation kit xinghaochen/awesome-hand-pose-estimation
(`UPSTREAM_REPO` at `UPSTREAM_COMMIT`, the 40 files of MANIFEST.tsv and 6 of MORE_MANIFEST.tsv),
the others from the methods' own repositories (A2J, AWR, HandFold, handpose-virtualview,
MURAUER; MORE_MANIFEST.tsv). One code path fetches, verifies and caches all of them.

Kinds (`kind`): "labels", "test_list", "sequence_labels" (ICVL's two original label files),
"predictions" (one method's test-set joints, scored by `evaluate`), and "centers" (a community
hand-centre file of one split, `split` "train" or "test", read by
`center_files.registered_centers`; never scored as predictions).

`fetch` returns a verified copy of one file:

* a local copy, when one is configured: the argument `local_dir`, else the environment
  variable HANDPOSE_PUBLISHED_DIR, else `../shared/published` beside the checkout when it
  holds a MANIFEST.tsv. Files lie under their registry path (`icvl/...`, `nyu/results/...`,
  `nyu/centers/...`), whatever repository published them. A local copy only overrides: it
  is verified by the same sha256 and never changes the registry;
* otherwise the download cache (HANDPOSE_CACHE_DIR, else `data/cache/published` of the
  checkout), laid out the same way. A file missing there is downloaded once with pooch from
  `base_url() + entry.mirror_path`.

Mirror layout. `mirror_path` is `<owner>/<repo>/<commit>/<upstream_path>`, the file's path
under https://raw.githubusercontent.com/, which is the default base URL. A mirror set in
HANDPOSE_PUBLISHED_URL is laid out the same way, one folder per repository and commit, so
files of several sources never collide and a mirror is filled by copying each file of the
local copy from its registry `path` to its `mirror_path` (as `.ci/check_clean_clone.sh`
does); it may serve MANIFEST.tsv and MORE_MANIFEST.tsv at its root, for the registry test.
This layout replaces the earlier `<mirror>/<upstream_path>` of the kit alone: an old mirror
needs its files moved under `xinghaochen/awesome-hand-pose-estimation/<UPSTREAM_COMMIT>/`.

Either way the sha256 is verified: a mismatch is an error, and a file that can be neither
found nor downloaded raises PublishedUnavailable, whose one-line message names the file, the
address tried and the two ways to supply a copy.

Labels and predictions are in the community uvd format (`handpose_lib.uvd_format`), printed
with 3 or 4 decimals by most methods and with a varying number (up to 6, A2J; up to 14,
CrossInfoNet ICVL) by others; the reader takes any number, and refuses a line with the wrong
number of values or a value that is not a finite number, naming the file and line.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import requests

from handpose_lib import conventions
from handpose_lib.joints import num_joints
from handpose_lib.paths import REPO_ROOT
from handpose_lib.uvd_format import FormatError, read_uvd
from handpose_lib.verified_files import ChecksumError as ChecksumError  # re-exported
from handpose_lib.verified_files import download, failure_reason, local_file, package_cache_dir
from handpose_lib.verified_files import sha256_of as sha256_of  # re-exported
from handpose_lib.verified_files import verify_checksum as verify_checksum  # re-exported

# The evaluation kit: the source of the labels and of 40 of the 55 prediction files.
UPSTREAM_REPO = "xinghaochen/awesome-hand-pose-estimation"
UPSTREAM_COMMIT = "e297a6ea7fd557bd5701c97a3437c551c4b4fbce"
# Every registry row's pinned upstream file is GITHUB_RAW_URL + its mirror_path.
GITHUB_RAW_URL = "https://raw.githubusercontent.com/"
KINDS = ("labels", "test_list", "sequence_labels", "predictions", "centers")

ENV_LOCAL_DIR = "HANDPOSE_PUBLISHED_DIR"
ENV_CACHE_DIR = "HANDPOSE_CACHE_DIR"
ENV_BASE_URL = "HANDPOSE_PUBLISHED_URL"
# A copy beside the checkout (as in this project's CI); used only when it has its manifest.
SIBLING_COPY = REPO_ROOT.parent / "shared" / "published"

# Frame ranges of the test sets in the order of the label files. ICVL's test set is the
# concatenation of test_seq_1 and test_seq_2; NYU's of its two subjects (conventions.py).
TEST_SUBSETS: dict[str, dict[str, tuple[int, int]]] = {
    dataset: conventions.test_subsets(dataset) for dataset in conventions.DATASETS
}


class PublishedUnavailable(OSError):
    """A published file has no local copy and could not be downloaded (one-line message).

    An OSError, so command-line tools that report I/O errors as one line report this one too.
    """


@dataclass(frozen=True)
class PublishedFile:
    """One row of the registry. `method`, `venue`, `year` are empty for label files; for a
    centre file they name the method whose centres it holds (V2V-PoseNet, CVPR 2018)."""

    path: str  # relative path, as in the manifests: "<dataset>/results/<file>.txt"
    sha256: str
    bytes: int
    upstream_path: str  # the file's path in `repository` at `commit`
    dataset: str  # "icvl" | "nyu"
    kind: str  # one of KINDS
    method: str
    venue: str
    year: int | None
    subset: str  # "all" or the name of the test subset the file covers
    repository: str = UPSTREAM_REPO  # "owner/name" on GitHub
    commit: str = UPSTREAM_COMMIT  # pinned, 40 hex digits
    split: str = "test"  # "test"; a centre file "train" or "test"
    center_source: str = ""  # centre files: short name of their origin ("v2v")
    note: str = ""

    @property
    def mirror_path(self) -> str:
        """`<owner>/<repo>/<commit>/<upstream_path>`: the file's path under
        raw.githubusercontent.com and under a mirror (HANDPOSE_PUBLISHED_URL)."""
        return f"{self.repository}/{self.commit}/{self.upstream_path}"

    @property
    def url(self) -> str:
        """Where `fetch` downloads it from: HANDPOSE_PUBLISHED_URL or GitHub, + mirror_path."""
        return base_url() + self.mirror_path

    @property
    def upstream_url(self) -> str:
        """The file at its pinned upstream commit, whatever HANDPOSE_PUBLISHED_URL says."""
        return GITHUB_RAW_URL + self.mirror_path

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    @property
    def frame_range(self) -> tuple[int, int]:
        """[start, stop) of the frames the file covers, in the label order of its split."""
        if self.split == "test":
            return TEST_SUBSETS[self.dataset][self.subset]
        return 0, conventions.split_frames(self.dataset, self.split)

    @property
    def frames(self) -> int:
        """Frames the file covers: its lines, or the rows of a MATLAB centre file."""
        start, stop = self.frame_range
        return stop - start


@cache
def registry() -> tuple[PublishedFile, ...]:
    """Every published file: MANIFEST.tsv's, then MORE_MANIFEST.tsv's, each in its order."""
    text = resources.files("handpose_lib").joinpath("published_registry.tsv").read_text()
    entries = tuple(
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
            repository=r["repository"],
            commit=r["commit"],
            split=r["split"],
            center_source=r["center_source"],
            note=r["note"],
        )
        for r in csv.DictReader(text.splitlines(), delimiter="\t")
    )
    for e in entries:
        pinned = len(e.commit) == 40 and not e.commit.strip("0123456789abcdef")
        if e.kind not in KINDS or not pinned or e.repository.count("/") != 1:
            raise ValueError(
                f"published_registry.tsv: {e.path}: kind {e.kind!r} (expected one of {KINDS}), "
                f"repository {e.repository!r} and commit {e.commit!r} must pin an address"
            )
    return entries


def lookup(name: str) -> PublishedFile:
    """Registry entry by relative path ("nyu/results/X.txt") or file stem ("X")."""
    for entry in registry():
        if name in (entry.path, entry.stem):
            return entry
    raise KeyError(f"{name!r} is not in the published registry (published_registry.tsv)")


def prediction_entries(dataset: str) -> list[PublishedFile]:
    """All published prediction files of `dataset`, in registry order: one leaderboard row
    each (`method`, `venue`, `year`). Centre files are never among them."""
    return [e for e in registry() if e.dataset == dataset and e.kind == "predictions"]


def center_entries(dataset: str | None = None) -> list[PublishedFile]:
    """The registered community centre files (of `dataset`, or all), in registry order."""
    return [e for e in registry() if e.kind == "centers" and dataset in (None, e.dataset)]


def upstream_sources() -> list[tuple[str, str]]:
    """The (repository, commit) pairs the registry's files come from, in registry order."""
    return list(dict.fromkeys((e.repository, e.commit) for e in registry()))


def find_prediction(dataset: str, method: str) -> PublishedFile:
    """The prediction file of `method` (display name, e.g. "V2V-PoseNet") on `dataset`."""
    matches = [e for e in prediction_entries(dataset) if e.method == method]
    if len(matches) != 1:
        known = sorted(e.method for e in prediction_entries(dataset))
        raise KeyError(f"no single {dataset} prediction file for {method!r}; known: {known}")
    return matches[0]


def _entry_of_kind(dataset: str, kind: str) -> PublishedFile:
    return next(e for e in registry() if e.dataset == dataset and e.kind == kind)


def base_url() -> str:
    """HANDPOSE_PUBLISHED_URL (a mirror, laid out `<owner>/<repo>/<commit>/<upstream_path>`
    like raw.githubusercontent.com), else GitHub's raw file server itself."""
    url = os.environ.get(ENV_BASE_URL) or GITHUB_RAW_URL
    return url if url.endswith("/") else url + "/"


def default_cache_dir() -> Path:
    """HANDPOSE_CACHE_DIR, else `data/cache/published` of this checkout (ignored by git).

    Installed without a checkout, the user cache folder of the platform (pooch.os_cache).
    """
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) if env else package_cache_dir("published")


def resolve_local_dir(local_dir: str | os.PathLike | None = None) -> Path | None:
    """The local copy to read from, or None (download into the cache).

    The argument, else HANDPOSE_PUBLISHED_DIR (an empty value counts as unset), else
    `../shared/published` beside the checkout when it holds a MANIFEST.tsv.
    """
    if local_dir is not None:
        return Path(local_dir)
    env = os.environ.get(ENV_LOCAL_DIR)
    if env:
        return Path(env)
    if (SIBLING_COPY / "MANIFEST.tsv").is_file():
        return SIBLING_COPY
    return None


def fetch(
    entry: PublishedFile | str,
    local_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Path of a verified copy of a published file.

    From the local copy when one is configured (see `resolve_local_dir`), else from the cache
    `cache_dir` (default `default_cache_dir()`), downloading it there first when it is missing
    or fails its checksum. Raises ChecksumError for a copy or download whose sha256 differs,
    FileNotFoundError for a file missing from a configured local copy, PublishedUnavailable
    when the download fails (no network, no such address).
    """
    if isinstance(entry, str):
        entry = lookup(entry)
    local = resolve_local_dir(local_dir)
    if local is not None:
        origin = f"of the published files, {ENV_LOCAL_DIR}={local}"
        return local_file(local, entry.path, entry.sha256, origin)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / entry.path
    stale = target.exists()  # pooch re-downloads a cached file whose hash differs
    cache.mkdir(parents=True, exist_ok=True)  # outside the try: not a download failure
    try:
        return download(entry.url, entry.sha256, entry.path, cache)
    except requests.exceptions.RequestException as err:
        raise PublishedUnavailable(_unavailable_message(entry, target, err, stale)) from None


def _unavailable_message(
    entry: PublishedFile, target: Path, err: requests.exceptions.RequestException, stale: bool
) -> str:
    """One line: the file, the address tried and why, and how to supply a copy instead."""
    reason = failure_reason(err)
    cached = "; the cached copy fails its sha256 check" if stale else ""
    return (
        f"published file {entry.path} ({entry.bytes} bytes) is not available: "
        f"download from {entry.url} failed ({reason}){cached}. Supply a local copy: set "
        f"{ENV_LOCAL_DIR} to a folder holding {entry.path}, or place the file at {target}"
    )


def fetch_all(
    entries: list[PublishedFile] | tuple[PublishedFile, ...] | None = None,
    local_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Fetch `entries` (default: the whole registry, centre files included); returns the
    folder that holds them.

    That folder is laid out by registry path (the local copy, or the cache), so it can be
    given as `local_dir` afterwards. Files already cached are verified, not downloaded.
    """
    local = resolve_local_dir(local_dir)
    for entry in registry() if entries is None else entries:
        fetch(entry, local_dir=local, cache_dir=cache_dir)
    if local is not None:
        return local
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def missing_from_cache(
    entries: list[PublishedFile] | tuple[PublishedFile, ...] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> list[PublishedFile]:
    """The entries `fetch` would download now: none with a local copy, else those not cached.

    Decided by presence and size only (cheap); `fetch` still verifies every sha256.
    """
    if resolve_local_dir() is not None:
        return []
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    missing = []
    for entry in registry() if entries is None else entries:
        path = cache / entry.path
        if not (path.is_file() and path.stat().st_size == entry.bytes):
            missing.append(entry)
    return missing


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
