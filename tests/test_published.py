import csv
import functools
import http.server
import io
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from handpose_lib import published, uvd_format
from handpose_lib.published import ChecksumError
from handpose_lib.uvd_format import FormatError


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _frame(j: int = 2, value: str = "1.0") -> str:
    return " ".join([value] * (3 * j))


# --- registry ---------------------------------------------------------------------------


README = Path(__file__).resolve().parents[1] / "README.md"


MANIFESTS = ("MANIFEST.tsv", "MORE_MANIFEST.tsv")


def _served_manifest(name: str) -> str | None:
    """Manifest `name` as the mirror serves it at its root (HANDPOSE_PUBLISHED_URL + name), or
    None where it answers 404: data/README.md lets a mirror hold only the registry's files."""
    url = published.base_url() + name
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        pytest.fail(f"the mirror {published.base_url()} answered {err.code} for {url}: {err}")
    except OSError as err:
        pytest.fail(f"the mirror {published.base_url()} could not be read ({url}: {err})")


def _manifest_texts(published_dir: Path) -> dict[str, str]:
    """Both manifests: from the local copy; on the download route, as a mirror serves them.

    Skipped where there is nothing to compare with: GitHub (the default) publishes no manifest,
    and a mirror may serve none (404 for both). A mirror serving one of the two fails: half a
    comparison would pass a registry that lost the other manifest's rows."""
    if all((published_dir / name).is_file() for name in MANIFESTS):
        return {name: (published_dir / name).read_text() for name in MANIFESTS}
    if published.base_url() == published.GITHUB_RAW_URL:
        pytest.skip("download route from GitHub, which serves no MANIFEST.tsv / MORE_MANIFEST.tsv")
    served = {name: _served_manifest(name) for name in MANIFESTS}
    missing = [name for name, text in served.items() if text is None]
    if len(missing) == len(MANIFESTS):
        pytest.skip(
            f"the mirror {published.base_url()} serves no manifest (404 for "
            f"{' and '.join(MANIFESTS)}): nothing to compare the registry with"
        )
    if missing:
        pytest.fail(
            f"the mirror {published.base_url()} serves {', '.join(set(MANIFESTS) - set(missing))} "
            f"but not {', '.join(missing)}: serve both manifests at its root, or neither"
        )
    return {name: text for name, text in served.items() if text is not None}


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def test_registry_lists_every_file_of_both_manifests_with_its_checksum(published_dir):
    """MANIFEST.tsv: the evaluation kit's files, by upstream path at the kit's pinned commit;
    MORE_MANIFEST.tsv: files of several repositories, each by its full pinned address."""
    texts = _manifest_texts(published_dir)
    first, more = (_rows(texts[name]) for name in MANIFESTS)
    entries = {e.path: e for e in published.registry()}
    assert len(entries) == len(published.registry())  # no path twice
    assert set(entries) == {r["path"] for r in first} | {r["path"] for r in more}
    assert len(first) + len(more) == len(entries)
    for row in first:
        entry = entries[row["path"]]
        assert (entry.sha256, entry.bytes) == (row["sha256"], int(row["bytes"]))
        assert entry.upstream_path == row["upstream_path"]
        assert (entry.repository, entry.commit) == (
            published.UPSTREAM_REPO,
            published.UPSTREAM_COMMIT,
        )
        assert entry.kind != "centers"
    for row in more:
        entry = entries[row["path"]]
        assert (entry.sha256, entry.bytes) == (row["sha256"], int(row["bytes"]))
        assert entry.upstream_url == row["url"]
        assert (entry.kind, entry.method, entry.venue) == (row["kind"], row["method"], row["venue"])
        assert entry.year == int(row["year"])
        assert entry.note == row["note"]


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A loopback mirror (its root folder returned) and no local copy: the download route."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    monkeypatch.setenv(published.ENV_BASE_URL, f"http://127.0.0.1:{server.server_port}/")
    yield root
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_mirror_without_manifests_skips_the_comparison_with_its_reason(mirror, tmp_path):
    with pytest.raises(pytest.skip.Exception, match=r"serves no manifest \(404 for MANIFEST\.tsv"):
        _manifest_texts(tmp_path / "cache")


def test_a_mirror_serving_one_manifest_of_two_fails(mirror, tmp_path):
    (mirror / "MANIFEST.tsv").write_text("path\tsha256\n")
    with pytest.raises(pytest.fail.Exception, match=r"but not MORE_MANIFEST\.tsv"):
        _manifest_texts(tmp_path / "cache")


def test_a_served_manifest_that_disagrees_with_the_registry_fails(mirror, tmp_path):
    """Where the mirror serves the manifests the comparison runs, and catches a wrong row."""
    entry = next(e for e in published.registry() if e.repository == published.UPSTREAM_REPO)
    more = next(e for e in published.registry() if e.repository != published.UPSTREAM_REPO)
    head = "path\tupstream_path\tsha256\tbytes\n"
    (mirror / "MANIFEST.tsv").write_text(
        head + f"{entry.path}\t{entry.upstream_path}\t{'0' * 64}\t{entry.bytes}\n"
    )
    (mirror / "MORE_MANIFEST.tsv").write_text(f"path\turl\n{more.path}\t{more.upstream_url}\n")
    texts = _manifest_texts(tmp_path / "cache")
    row = _rows(texts["MANIFEST.tsv"])[0]
    assert row["path"] == entry.path
    assert row["sha256"] != entry.sha256
    with pytest.raises(AssertionError):
        test_registry_lists_every_file_of_both_manifests_with_its_checksum(tmp_path / "cache")


def test_every_row_has_its_own_pinned_upstream_address():
    for entry in published.registry():
        assert entry.upstream_url == (
            f"https://raw.githubusercontent.com/{entry.repository}/{entry.commit}/"
            f"{entry.upstream_path}"
        )
        assert len(entry.commit) == 40
        assert int(entry.commit, 16) >= 0
    repositories = {repo for repo, _ in published.upstream_sources()}
    assert repositories == {
        "xinghaochen/awesome-hand-pose-estimation",
        "zhangboshen/A2J",
        "Elody-07/AWR-Adaptive-Weighting-Regression",
        "cwc1260/HandFold",
        "iscas3dv/handpose-virtualview",
        "poier/murauer",
    }
    assert len(published.upstream_sources()) == len(repositories)  # one commit each


def test_centre_files_are_registered_by_dataset_and_split():
    centres = {(e.dataset, e.split): e for e in published.center_entries()}
    assert set(centres) == {("nyu", "train"), ("nyu", "test"), ("icvl", "test")}
    assert [centres[k].frames for k in sorted(centres)] == [1596, 8252, 72757]
    for entry in centres.values():
        assert entry.center_source == "v2v"
        assert (entry.venue, entry.year) == ("CVPR", 2018)
        assert entry not in published.prediction_entries(entry.dataset)
    assert published.center_entries("icvl") == [centres["icvl", "test"]]


def test_mirror_address_is_the_base_url_plus_owner_repo_commit_and_path(monkeypatch):
    entry = published.lookup("ICCV19_NYU_A2J")
    monkeypatch.delenv(published.ENV_BASE_URL, raising=False)
    assert entry.url == entry.upstream_url
    monkeypatch.setenv(published.ENV_BASE_URL, "http://mirror.example/pub")
    assert entry.url == (
        "http://mirror.example/pub/zhangboshen/A2J/4c332f0ebff159d384af162a90b64ce89ea8d4b4/"
        "result_nyu_icvl/nyu_861_epoch32_UVD.txt"
    )


def test_readme_states_what_the_default_run_downloads():
    """The download counts and sizes of the README and its real-data page are the registry's,
    so they cannot go stale."""
    pages = [README, README.parent / "docs" / "real-data.md"]
    # Line breaks of the prose do not matter.
    text = " ".join(" ".join(page.read_text() for page in pages).split())
    registry = published.registry()
    total = sum(e.bytes for e in registry)
    labels = published.lookup("icvl/icvl_test_groundtruth_label.txt").bytes
    predictions = sum(e.kind == "predictions" for e in registry)
    centres = len(published.center_entries())
    assert f"{len(registry)} files, {total:,} bytes" in text
    assert f"all {len(registry)} files" in text
    assert f"{predictions} prediction files" in text
    assert f"{centres} community hand-centre files" in text
    assert f"{len(published.upstream_sources())} repositories" in text
    assert f"{labels:,} bytes" in text


def test_every_prediction_has_method_venue_year():
    for entry in published.registry():
        if entry.kind == "predictions":
            assert entry.method
            assert entry.venue
            assert entry.year >= 2014
            assert entry.dataset in ("icvl", "nyu")


def test_lookup_by_stem_and_unknown_name():
    assert published.lookup("CVPR18_NYU_V2V_PoseNet").method == "V2V-PoseNet"
    with pytest.raises(KeyError, match="not in the published registry"):
        published.lookup("nope")


# --- fetching ---------------------------------------------------------------------------


def test_fetch_from_local_copy_verifies_and_returns_path(published_dir):
    path = published.fetch("icvl/icvl_test_groundtruth_label.txt", local_dir=published_dir)
    assert path == published_dir / "icvl" / "icvl_test_groundtruth_label.txt"


def test_local_copy_with_wrong_checksum_is_refused(published_dir, tmp_path):
    entry = published.lookup("IJCAI16_ICVL_DeepModel")
    copy = tmp_path / entry.path
    copy.parent.mkdir(parents=True)
    shutil.copy(published_dir / entry.path, copy)
    with open(copy, "a") as f:
        f.write("\n")  # one byte more: the numbers would still parse
    with pytest.raises(ChecksumError, match=r"IJCAI16_ICVL_DeepModel.txt: sha256 is"):
        published.fetch(entry, local_dir=tmp_path)


def test_local_copy_altered_in_place_at_the_same_size_is_refused(published_dir, tmp_path):
    """One digit of the labels changed, the size kept: only the sha256 can tell, and the error
    names the file. The untouched copy of the same file is accepted."""
    entry = published.lookup("icvl/icvl_test_groundtruth_label.txt")
    copy = tmp_path / entry.path
    copy.parent.mkdir(parents=True)
    shutil.copy(published_dir / entry.path, copy)
    assert published.fetch(entry, local_dir=tmp_path) == copy
    data = bytearray(copy.read_bytes())
    digit = next(i for i in range(len(data) // 2, len(data)) if chr(data[i]).isdigit())
    data[digit] = ord("1") if data[digit] != ord("1") else ord("2")
    copy.write_bytes(bytes(data))
    assert copy.stat().st_size == entry.bytes
    with pytest.raises(ChecksumError, match=r"icvl_test_groundtruth_label\.txt: sha256 is"):
        published.fetch(entry, local_dir=tmp_path)


def test_environment_variable_points_at_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv(published.ENV_LOCAL_DIR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing from the local copy"):
        published.fetch("icvl/icvl_test_list.txt")


def test_copy_beside_the_checkout_is_used_only_with_its_manifest(tmp_path, monkeypatch):
    monkeypatch.delenv(published.ENV_LOCAL_DIR, raising=False)
    sibling = tmp_path / "shared" / "published"
    sibling.mkdir(parents=True)
    monkeypatch.setattr(published, "SIBLING_COPY", sibling)
    assert published.resolve_local_dir() is None  # no MANIFEST.tsv: download instead
    (sibling / "MANIFEST.tsv").write_text("path\n")
    assert published.resolve_local_dir() == sibling
    monkeypatch.setenv(published.ENV_LOCAL_DIR, str(tmp_path / "mine"))
    assert published.resolve_local_dir() == tmp_path / "mine"  # the variable wins
    assert published.resolve_local_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument too


# --- the uvd text format ----------------------------------------------------------------


def test_read_uvd_shapes_and_values(tmp_path):
    path = _write(tmp_path / "p.txt", ["1 2 3 4 5 6", "7 8 9 10 11 12"])
    uvd = uvd_format.read_uvd(path, num_joints=2)
    assert uvd.shape == (2, 2, 3)
    np.testing.assert_array_equal(uvd[1, 0], [7, 8, 9])


def test_wrong_number_of_values_names_file_and_line(tmp_path):
    path = _write(tmp_path / "p.txt", [_frame(), "1 2 3 4 5"])
    with pytest.raises(FormatError, match=r"p\.txt:2: 5 values, expected 6"):
        uvd_format.read_uvd(path, num_joints=2)


def test_non_numeric_value_names_file_line_and_value(tmp_path):
    path = _write(tmp_path / "p.txt", [_frame(), _frame(), "1 2 abc 4 5 6"])
    with pytest.raises(FormatError, match=r"p\.txt:3: value 3 is 'abc', expected a number"):
        uvd_format.read_uvd(path, num_joints=2)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_nan_and_inf_are_rejected(tmp_path, bad):
    path = _write(tmp_path / "p.txt", [f"1 2 3 4 5 {bad}"])
    with pytest.raises(FormatError, match=r"p\.txt:1: value 6 .* finite number"):
        uvd_format.read_uvd(path, num_joints=2)


def test_frame_count_must_match_ground_truth(tmp_path):
    path = _write(tmp_path / "p.txt", [_frame()] * 3)
    with pytest.raises(FormatError, match=r"p\.txt: 3 frames, expected 4"):
        uvd_format.read_uvd(path, num_joints=2, expected_frames=4)


def test_blank_line_inside_file_is_an_error_but_trailing_blanks_are_not(tmp_path):
    inside = _write(tmp_path / "inside.txt", [_frame(), "", _frame()])
    with pytest.raises(FormatError, match=r"inside\.txt:2: blank line"):
        uvd_format.read_uvd(inside, num_joints=2)
    trailing = _write(tmp_path / "trailing.txt", [_frame(), _frame(), "", ""])
    assert uvd_format.read_uvd(trailing, num_joints=2).shape == (2, 2, 3)


def test_empty_and_binary_files_are_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(FormatError, match="no frames"):
        uvd_format.read_uvd(empty, num_joints=2)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(FormatError, match=r"binary.txt: not a text file"):
        uvd_format.read_uvd(binary, num_joints=2)


def test_windows_line_endings_of_original_icvl_files(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_bytes(
        b"img_0.png " + _frame().encode() + b"\r\r\nimg_1.png " + b"2 " * 6 + b"\r\r\n"
    )
    uvd = uvd_format.read_uvd(path, num_joints=2, values_start=1)
    assert uvd.shape == (2, 2, 3)
    assert uvd[1, 1, 2] == 2.0


def test_files_printing_different_numbers_of_decimals_read_alike(tmp_path):
    """Published files print 3 decimals (most), 4 (MURAUER), up to 4 or 6 varying by value
    (CrossInfoNet NYU, A2J: trailing zeros dropped) or up to 14 (CrossInfoNet ICVL); integers
    and exponents are numbers too."""
    path = _write(
        tmp_path / "p.txt",
        ["1.5 2 300.000 4.0000 5.00000001 6.0000000000000", "1.5e0 2. 3e2 4 5 6"],
    )
    uvd = uvd_format.read_uvd(path, num_joints=2)
    np.testing.assert_allclose(uvd[0].ravel(), [1.5, 2, 300, 4, 5.00000001, 6])
    np.testing.assert_array_equal(uvd[1].ravel(), [1.5, 2, 300, 4, 5, 6])


def test_values_are_those_of_float_bit_for_bit(tmp_path):
    """A clean file is read by pandas' C parser: its values must be those of Python's float()
    on each field (the line-by-line reader), to the last bit, for every way of printing."""
    rng = np.random.default_rng(3)
    values = rng.uniform(-1e3, 1e3, (400, 6)) * 10.0 ** rng.integers(-6, 6, (400, 6))
    texts = [[repr(float(v)) for v in row] for row in values]  # 17 significant digits
    texts += [[f"{v:.3f}" for v in row] for row in values]
    texts += [[f"{v:.6e}" for v in row] for row in values]
    path = _write(tmp_path / "p.txt", [" ".join(row) for row in texts])
    expected = np.array([[float(t) for t in row] for row in texts]).reshape(-1, 2, 3)
    read = uvd_format.read_uvd(path, num_joints=2)
    assert read.tobytes() == expected.tobytes()
    assert read.flags.c_contiguous


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ([_frame(), "  \t ", _frame()], r"p\.txt:2: blank line"),  # whitespace-only line
        (["", _frame()], r"p\.txt:1: blank line"),  # a blank first line
        ([_frame(), "1 2 3 4 5 6 7"], r"p\.txt:2: 7 values, expected 6"),  # one too many
        (['1 2 3 4 5 "6"'], r"p\.txt:1: value 6 is '\"6\"', expected a number"),  # quoted
        (["1 2 3 4 5 NA"], r"p\.txt:1: value 6 is 'NA', expected a number"),
        (["1 2 3\r4 5 6"], r"p\.txt:1: 6 values"),  # a lone CR is no line break: fine
        (["TRUE 2 3 4 5 6", "false 2 3 4 5 6"], r"p\.txt:1: value 1 is 'TRUE', expected a n"),
        (["\ufeff1 2 3 4 5 6"], r"p\.txt:1: value 1 is '\\ufeff1', expected a number"),  # BOM
        # The first fault in the file is named, whatever its kind.
        (["x 2 3 4 5 6", _frame(), "1 2"], r"p\.txt:1: value 1 is 'x', expected a number"),
    ],
)
def test_what_the_fast_reader_refuses_is_named_by_the_line_by_line_one(tmp_path, lines, error):
    path = _write(tmp_path / "p.txt", lines)
    if "6 values" in error:  # one line of six values, read alike by both
        np.testing.assert_array_equal(uvd_format.read_uvd(path, 2).ravel(), [1, 2, 3, 4, 5, 6])
        return
    with pytest.raises(FormatError, match=error):
        uvd_format.read_uvd(path, num_joints=2)


def test_write_read_round_trip(tmp_path):
    uvd = np.random.default_rng(1).uniform(0, 500, (5, 14, 3))
    path = uvd_format.write_uvd(tmp_path / "out" / "pred.txt", uvd)
    np.testing.assert_allclose(uvd_format.read_uvd(path, 14), uvd, atol=5e-4)


def test_write_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        uvd_format.write_uvd(tmp_path / "x.txt", np.full((1, 2, 3), np.nan))


# --- the real files ---------------------------------------------------------------------


def test_labels_load_with_expected_shapes(published_dir):
    assert published.load_labels("icvl", published_dir).shape == (1596, 16, 3)
    assert published.load_labels("nyu", published_dir).shape == (8252, 14, 3)
    assert len(published.load_test_list("nyu", published_dir)) == 8252


def test_icvl_sequence_files_concatenate_to_test_labels(published_dir):
    seqs = [
        uvd_format.read_uvd(published_dir / "icvl" / f"test_seq_{i}.txt", 16, values_start=1)
        for i in (1, 2)
    ]
    labels = published.load_labels("icvl", published_dir)
    np.testing.assert_allclose(np.concatenate(seqs), labels, atol=1e-3)


def test_subset_sizes():
    assert published.subset_for_frame_count("icvl", 702) == "test_seq_1"
    assert published.subset_for_frame_count("icvl", 1596) == "all"
    with pytest.raises(FormatError, match="700 frames, expected one of 1596 \\(all\\)"):
        published.subset_for_frame_count("icvl", 700, "x.txt")
