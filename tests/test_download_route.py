"""The route a user without a local copy takes to the published files.

No HANDPOSE_PUBLISHED_DIR, no `../shared/published`: `published.fetch` downloads from
HANDPOSE_PUBLISHED_URL (here a loopback HTTP server laid out like raw.githubusercontent.com,
every file under `<owner>/<repo>/<commit>/<upstream_path>`, whichever repository published it)
into the cache, verifies the sha256, and reuses the cached copy without asking again. Offline
with nothing cached, the library, the evaluation CLI and the runner stop with one line.

The files served are generated here (their sha256 injected into the registry), so these tests
mean the same with or without a copy of the real files; one test serves the real files too,
taking them from wherever the suite gets them (`published_dir`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from handpose_lib import center_files, evaluate, published, reproduce, uvd_format
from handpose_lib.published import ChecksumError, PublishedUnavailable

SERVER_LIFETIME_S = 120  # the server stops by itself even if a test never returns
LABELS = "icvl/icvl_test_groundtruth_label.txt"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, requests: list[str], **kwargs):
        self.requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@dataclasses.dataclass
class Upstream:
    """A loopback server serving `root` (files under their mirror paths)."""

    root: Path
    url: str
    requests: list[str]
    server: http.server.ThreadingHTTPServer

    def serve(self, entry: published.PublishedFile, data: bytes) -> None:
        path = self.root / entry.mirror_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """The user's situation: no local copy of any kind, an empty cache."""
    monkeypatch.delenv(published.ENV_LOCAL_DIR, raising=False)
    monkeypatch.setattr(published, "SIBLING_COPY", tmp_path / "no-shared" / "published")
    path = tmp_path / "cache"
    monkeypatch.setenv(published.ENV_CACHE_DIR, str(path))
    return path


@pytest.fixture
def upstream(tmp_path, monkeypatch, cache) -> Upstream:
    root = tmp_path / "upstream"
    root.mkdir()
    requests: list[str] = []
    handler = functools.partial(_Handler, requests=requests, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    watchdog = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    url = f"http://127.0.0.1:{server.server_port}/mirror/"
    # The base URL may carry a path: the mirror path of each file is appended to it.
    monkeypatch.setenv(published.ENV_BASE_URL, url)
    mirror = Upstream(root / "mirror", url, requests, server)
    mirror.root.mkdir()
    yield mirror
    watchdog.cancel()
    server.shutdown()
    server.server_close()


def _dead_url() -> str:
    """An address on which nothing listens: what a machine without network sees."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def synthetic_labels(monkeypatch) -> tuple[published.PublishedFile, np.ndarray, bytes]:
    """ICVL test labels made up here; the registry is given their sha256 and size."""
    uvd = np.random.default_rng(9).uniform(50, 400, (1596, 16, 3))
    lines = [" ".join(f"{v:.4f}" for v in frame.ravel()) for frame in uvd]
    data = ("\n".join(lines) + "\n").encode()
    real = published.registry()
    entry = dataclasses.replace(
        published.lookup(LABELS), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)
    )
    monkeypatch.setattr(
        published, "registry", lambda: tuple(entry if e.path == LABELS else e for e in real)
    )
    return entry, uvd, data


def test_labels_are_downloaded_once_verified_cached_and_reused(upstream, cache, synthetic_labels):
    entry, uvd, data = synthetic_labels
    upstream.serve(entry, data)
    assert published.missing_from_cache([entry]) == [entry]

    labels = published.load_labels("icvl")  # what the default run needs
    np.testing.assert_allclose(labels, uvd, atol=5e-5)
    assert upstream.requests == ["/mirror/" + entry.mirror_path]
    cached = cache / entry.path  # laid out like a local copy
    assert cached.read_bytes() == data
    assert published.missing_from_cache([entry]) == []

    np.testing.assert_array_equal(published.load_labels("icvl"), labels)
    assert len(upstream.requests) == 1  # the second call asked nobody

    upstream.stop()  # offline from now on: the cache is enough
    assert published.fetch(entry) == cached


def test_tampered_download_is_refused_and_not_cached(upstream, cache, synthetic_labels):
    entry, _, data = synthetic_labels
    upstream.serve(entry, data.replace(b"1", b"2", 1))  # still parses as numbers
    with pytest.raises(ChecksumError, match="sha256 differs from the registry"):
        published.fetch(entry)
    assert not (cache / entry.path).exists()
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_tampered_cached_file_is_replaced_by_a_verified_download(upstream, cache, synthetic_labels):
    entry, _, data = synthetic_labels
    upstream.serve(entry, data)
    cached = cache / entry.path
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the labels\n")
    assert published.fetch(entry) == cached
    assert cached.read_bytes() == data
    assert len(upstream.requests) == 1


def test_offline_without_cache_is_one_line_naming_file_address_and_remedies(
    cache, synthetic_labels, monkeypatch
):
    entry, _, _ = synthetic_labels
    url = _dead_url()
    monkeypatch.setenv(published.ENV_BASE_URL, url)
    with pytest.raises(PublishedUnavailable) as err:
        published.fetch(entry)
    message = str(err.value)
    assert "\n" not in message
    assert entry.path in message
    assert url + entry.mirror_path in message
    assert published.ENV_LOCAL_DIR in message
    assert str(cache / entry.path) in message
    assert isinstance(err.value, OSError)


def test_a_file_placed_in_the_cache_by_hand_is_used_offline(cache, synthetic_labels, monkeypatch):
    entry, uvd, data = synthetic_labels
    monkeypatch.setenv(published.ENV_BASE_URL, _dead_url())
    (cache / entry.path).parent.mkdir(parents=True)
    (cache / entry.path).write_bytes(data)
    np.testing.assert_allclose(published.load_labels("icvl"), uvd, atol=5e-5)


def test_evaluate_cli_offline_prints_one_line(
    cache, synthetic_labels, tmp_path, monkeypatch, capsys
):
    _, uvd, _ = synthetic_labels
    monkeypatch.setenv(published.ENV_BASE_URL, _dead_url())
    predictions = uvd_format.write_uvd(tmp_path / "mine.txt", uvd)
    assert evaluate.main(["icvl", str(predictions)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: published file {LABELS}")


def test_runner_offline_stops_before_any_notebook_with_one_line(
    cache, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(published.ENV_BASE_URL, _dead_url())
    monkeypatch.setattr(reproduce, "run_notebook", pytest.fail)  # must not be reached
    code = reproduce.main(["--profile", "smoke", "--output", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: published file ")
    assert f"downloading {len(published.registry())} published files" in captured.out


def test_real_files_of_several_repositories_through_the_download_route(
    upstream, cache, published_dir
):
    """The real registry's checksums hold for files served under their mirror paths, from
    three repositories (the evaluation kit, A2J, AWR), and evaluations and centres read
    through the download route equal those from the local copy."""
    names = [
        LABELS,
        "icvl/results/CVPR18_ICVL_V2V_PoseNet.txt",  # the kit
        "icvl/results/ICCV19_ICVL_A2J.txt",  # zhangboshen/A2J
        "icvl/centers/icvl_center_test.mat",  # zhangboshen/A2J, a MATLAB file
        "nyu/centers/center_test_refined.txt",  # Elody-07/AWR-Adaptive-Weighting-Regression
    ]
    for name in names:
        entry = published.lookup(name)
        upstream.serve(entry, (published_dir / entry.path).read_bytes())
    methods = ["V2V-PoseNet", "A2J"]
    downloaded = evaluate.evaluate_published("icvl", methods)
    local = evaluate.evaluate_published("icvl", methods, local_dir=published_dir)
    assert [r.mean_error_mm for r in downloaded] == [r.mean_error_mm for r in local]
    for dataset in ("icvl", "nyu"):
        got = center_files.registered_centers(dataset, "test")
        np.testing.assert_array_equal(
            got.values,
            center_files.registered_centers(dataset, "test", local_dir=published_dir).values,
        )
    assert sorted(upstream.requests) == sorted(
        "/mirror/" + published.lookup(n).mirror_path for n in names
    )
    assert len({published.lookup(n).repository for n in names}) == 3
    for name in names:
        assert published.sha256_of(cache / name) == published.lookup(name).sha256
    shutil.rmtree(upstream.root)  # gone upstream: the cache still serves
    again = evaluate.evaluate_published("icvl", methods)
    assert [r.mean_error_mm for r in again] == [r.mean_error_mm for r in local]
