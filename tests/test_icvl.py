"""ICVL reader on fixtures in the distributed format (16-bit PNGs, label text files), and
every kind of bad input: missing root or file, damaged PNG, malformed label line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handpose_lib import published
from handpose_lib.camera import ICVL
from handpose_lib.datasets import icvl
from handpose_lib.datasets.icvl import (
    IcvlSource,
    read_depth_png,
    read_label_file,
    write_depth_png,
    write_label_file,
)
from handpose_lib.uvd_format import FormatError


def random_depth(rng) -> np.ndarray:
    depth = rng.integers(200, 3000, size=(240, 320)).astype(np.float32)
    depth[rng.random((240, 320)) < 0.2] = 0  # missing readings
    depth[0, 0] = 32001  # ICVL's "no reading" value survives as is
    return depth


def random_uvd(rng, n) -> np.ndarray:
    uvd = np.column_stack(
        [rng.uniform(0, 320, n * 16), rng.uniform(0, 240, n * 16), rng.uniform(200, 600, n * 16)]
    )
    return np.round(uvd.reshape(n, 16, 3), 3)  # the label files keep three decimals


def write_sequence(folder: Path, label_name: str, names: list[str], rng, eol="\n"):
    """A label file plus its PNGs under folder/Depth; returns (depths, uvd)."""
    uvd = random_uvd(rng, len(names))
    path = write_label_file(folder / label_name, names, uvd)
    if eol != "\n":
        path.write_bytes(path.read_bytes().replace(b"\n", eol.encode()))
    depths = [random_depth(rng) for _ in names]
    for name, depth in zip(names, depths, strict=True):
        write_depth_png(folder / "Depth" / name, depth)
    return depths, uvd


@pytest.fixture
def icvl_root(tmp_path):
    """A miniature ICVL tree: 4 training frames (2 original, 2 rotated copies), 2 + 3 test
    frames, the test labels with the original files' "\\r\\r\\n" line ends."""
    rng = np.random.default_rng(0)
    train_names = [
        "201403121135/image_0000.png",
        "201403121135/image_0001.png",
        "45/201403121135/image_0000.png",
        "45/201403121135/image_0001.png",
    ]
    train = write_sequence(tmp_path / "Training", "labels.txt", train_names, rng)
    seq1 = write_sequence(
        tmp_path / "Testing",
        "test_seq_1.txt",
        [f"test_seq_1/image_{i:04d}.png" for i in range(2)],
        rng,
        "\r\r\n",
    )
    seq2 = write_sequence(
        tmp_path / "Testing",
        "test_seq_2.txt",
        [f"test_seq_2/image_{i:04d}.png" for i in range(3)],
        rng,
        "\r\r\n",
    )
    return tmp_path, {"train": (train_names, *train), "seq1": seq1, "seq2": seq2}


# ---------------------------------------------------------------------------- round trips


def test_depth_png_round_trip_keeps_millimetres(tmp_path):
    depth = random_depth(np.random.default_rng(1))
    path = write_depth_png(tmp_path / "d.png", depth)
    with Image.open(path) as image:
        assert image.size == (320, 240)
        assert np.asarray(image).dtype.itemsize == 2
    read = read_depth_png(path)
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, depth)


def test_label_file_round_trip(tmp_path):
    uvd = random_uvd(np.random.default_rng(2), 3)
    names = [f"test_seq_1/image_{i:04d}.png" for i in range(3)]
    read_names, read_uvd = read_label_file(write_label_file(tmp_path / "l.txt", names, uvd))
    assert read_names == names
    np.testing.assert_array_equal(read_uvd, uvd)


def test_train_source_yields_the_labelled_frames(icvl_root):
    root, fixture = icvl_root
    names, depths, uvd = fixture["train"]
    source = IcvlSource(root, "train")
    assert source.dataset == "icvl"
    assert len(source) == 4
    for i in range(4):
        frame = source[i]
        assert frame.name == names[i]
        assert frame.camera == ICVL
        np.testing.assert_array_equal(frame.depth_mm, depths[i])
        np.testing.assert_array_equal(frame.uvd, uvd[i])
    np.testing.assert_array_equal(source[-1].uvd, uvd[-1])


def test_test_split_is_seq_1_then_seq_2_in_file_order(icvl_root):
    root, fixture = icvl_root
    source = IcvlSource(root, "test", check_counts=False)
    assert [source[i].name for i in range(len(source))] == [
        "test_seq_1/image_0000.png",
        "test_seq_1/image_0001.png",
        "test_seq_2/image_0000.png",
        "test_seq_2/image_0001.png",
        "test_seq_2/image_0002.png",
    ]
    uvd = np.concatenate([fixture["seq1"][1], fixture["seq2"][1]])
    np.testing.assert_array_equal(source.uvd, uvd)
    np.testing.assert_array_equal(source[3].depth_mm, fixture["seq2"][0][1])
    only_two = IcvlSource(root, "test_seq_2", check_counts=False)
    assert len(only_two) == 3
    assert only_two[0].name == "test_seq_2/image_0000.png"


def test_originals_only_drops_the_rotated_copies(icvl_root):
    root, fixture = icvl_root
    source = IcvlSource(root, "train", originals_only=True)
    assert source.names == fixture["train"][0][:2]
    np.testing.assert_array_equal(source.uvd, fixture["train"][2][:2])


def test_root_from_environment(icvl_root, monkeypatch):
    root, _ = icvl_root
    monkeypatch.setenv(icvl.ENV_ROOT, str(root))
    assert len(IcvlSource(split="train")) == 4


def test_published_test_counts_are_checked(icvl_root):
    root, _ = icvl_root
    with pytest.raises(FormatError, match=r"test_seq_1.txt: 2 frames, expected 702"):
        IcvlSource(root, "test")


# ---------------------------------------------------------------------------- bad input


def test_no_root_names_the_environment_variable(monkeypatch):
    monkeypatch.delenv(icvl.ENV_ROOT, raising=False)
    with pytest.raises(ValueError, match="HANDPOSE_ICVL_ROOT"):
        IcvlSource()


def test_missing_root_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        IcvlSource(tmp_path / "nowhere")


def test_missing_label_file(tmp_path):
    (tmp_path / "Testing").mkdir()
    with pytest.raises(FileNotFoundError, match=r"test_seq_1.txt"):
        IcvlSource(tmp_path, "test")


def test_missing_image_names_the_file(icvl_root):
    root, fixture = icvl_root
    (root / "Training" / "Depth" / fixture["train"][0][1]).unlink()
    source = IcvlSource(root, "train")
    with pytest.raises(FileNotFoundError, match=r"image_0001.png"):
        source[1]


def test_truncated_png_names_the_file(icvl_root):
    root, fixture = icvl_root
    path = root / "Training" / "Depth" / fixture["train"][0][0]
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(FormatError, match=r"image_0000.png: unreadable PNG"):
        IcvlSource(root, "train")[0]


def test_wrong_size_png_names_the_file_and_expected_shape(icvl_root):
    root, fixture = icvl_root
    path = root / "Training" / "Depth" / fixture["train"][0][0]
    Image.fromarray(np.zeros((120, 160), np.uint16)).save(path)
    with pytest.raises(FormatError, match=r"image_0000.png: image is \(120, 160\).*\(240, 320\)"):
        IcvlSource(root, "train")[0]


def test_label_line_with_wrong_value_count_names_file_and_line(icvl_root):
    root, _ = icvl_root
    path = root / "Training" / "labels.txt"
    lines = path.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:-1])  # drop the last value of the third frame
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=r"labels.txt:3: 48 values, expected 49"):
        IcvlSource(root, "train")


def test_bad_split():
    with pytest.raises(ValueError, match="unknown ICVL split"):
        IcvlSource("/", "validation")


def test_index_out_of_range(icvl_root):
    root, _ = icvl_root
    with pytest.raises(IndexError):
        IcvlSource(root, "train")[4]


def test_real_published_test_labels_give_the_published_order(tmp_path, published_dir):
    """The real ICVL test label files through IcvlSource: 1596 frames equal to the published
    ground truth, in the order of the published test list."""
    testing = tmp_path / "Testing"
    (testing / "Depth").mkdir(parents=True)
    for sequence in ("test_seq_1", "test_seq_2"):
        src = published.fetch(f"icvl/{sequence}.txt", local_dir=published_dir)
        (testing / f"{sequence}.txt").write_bytes(src.read_bytes())
    source = IcvlSource(tmp_path, "test")
    assert len(source) == 1596
    assert source.names == published.load_test_list("icvl", local_dir=published_dir)
    np.testing.assert_array_equal(source.uvd, published.load_labels("icvl", published_dir))


def test_cache_key_changes_when_labels_change(icvl_root):
    """A relabelled file with the same frame count must not reuse a stale crop cache."""
    root, fixture = icvl_root
    names, _, uvd = fixture["train"]
    before = IcvlSource(root, "train").cache_key
    assert before == IcvlSource(root, "train").cache_key
    assert before != IcvlSource(root, "train", originals_only=True).cache_key
    write_label_file(root / "Training" / "labels.txt", names, uvd + 1.0)
    assert IcvlSource(root, "train").cache_key != before
