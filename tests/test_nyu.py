"""NYU reader on fixtures in the distributed format (RGB-packed depth PNGs, joint_data.mat
written with scipy.io.savemat), and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from handpose_lib.camera import NYU
from handpose_lib.datasets import nyu
from handpose_lib.datasets.nyu import (
    NyuSource,
    image_name,
    read_depth_png,
    read_joint_data,
    write_depth_png,
    write_joint_data,
)
from handpose_lib.joints import NYU_EVAL_JOINT_IDS
from handpose_lib.uvd_format import FormatError

JOINT_NAMES = [f"J{i:02d}" for i in range(36)]


def random_labels(rng, n):
    uvd = np.stack(
        [
            rng.uniform(0, 640, (3, n, 36)),
            rng.uniform(0, 480, (3, n, 36)),
            rng.uniform(400, 1000, (3, n, 36)),
        ],
        axis=-1,
    )
    return uvd, rng.normal(0, 100, (3, n, 36, 3))


@pytest.fixture
def nyu_root(tmp_path):
    """A miniature NYU tree: test/ with 3 frames of Kinect 1 and a joint_data.mat."""
    rng = np.random.default_rng(0)
    uvd, xyz = random_labels(rng, 3)
    write_joint_data(tmp_path / "test" / "joint_data.mat", uvd, xyz, JOINT_NAMES)
    depths = []
    for i in range(3):
        depth = np.add.outer(np.arange(480.0), 4 * np.arange(640.0)).astype(np.float32)
        depth[100:160, 200:300] = rng.integers(0, 65536, size=(60, 100))  # every byte value
        write_depth_png(tmp_path / image_name("test", i), depth)
        depths.append(depth)
    return tmp_path, uvd, xyz, depths


# ---------------------------------------------------------------------------- round trips


def test_packed_depth_round_trip_keeps_millimetres(tmp_path):
    depth = np.random.default_rng(1).integers(0, 65536, size=(480, 640)).astype(np.float32)
    depth[:2, :3] = [[0, 255, 256], [1000, 65535, 4095]]
    path = write_depth_png(tmp_path / "depth_1_0000001.png", depth)
    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert image.size == (640, 480)
        pixels = np.asarray(image)
    assert tuple(pixels[1, 0]) == (0, 1000 >> 8, 1000 & 255)  # green high byte, blue low byte
    np.testing.assert_array_equal(read_depth_png(path), depth)


def test_image_names_are_one_based_and_seven_digits():
    assert image_name("test", 0) == "test/depth_1_0000001.png"
    assert image_name("train", 72756, kinect=2) == "train/depth_3_0072757.png"


def test_joint_data_round_trip_selects_kinect_and_joints(tmp_path):
    uvd, xyz = random_labels(np.random.default_rng(2), 4)
    path = write_joint_data(tmp_path / "joint_data.mat", uvd, xyz, JOINT_NAMES)
    labels = read_joint_data(path)
    np.testing.assert_array_equal(labels.uvd, uvd[0][:, list(NYU_EVAL_JOINT_IDS)])
    np.testing.assert_array_equal(labels.xyz_mm, xyz[0][:, list(NYU_EVAL_JOINT_IDS)])
    assert labels.joint_names == tuple(JOINT_NAMES[i] for i in NYU_EVAL_JOINT_IDS)
    every = read_joint_data(path, kinect=2, joint_ids=None)
    np.testing.assert_array_equal(every.uvd, uvd[2])
    assert len(every.joint_names) == 36


def test_source_yields_kinect_1_frames_and_14_joints(nyu_root):
    root, uvd, _, depths = nyu_root
    source = NyuSource(root, "test", check_counts=False)
    assert source.dataset == "nyu"
    assert len(source) == 3
    for i in range(3):
        frame = source[i]
        assert frame.name == f"test/depth_1_{i + 1:07d}.png"
        assert frame.camera == NYU
        np.testing.assert_array_equal(frame.depth_mm, depths[i])
        np.testing.assert_array_equal(frame.uvd, uvd[0, i][list(NYU_EVAL_JOINT_IDS)])
    assert source[-1].name == "test/depth_1_0000003.png"


def test_root_from_environment(nyu_root, monkeypatch):
    monkeypatch.setenv(nyu.ENV_ROOT, str(nyu_root[0]))
    assert len(NyuSource(split="test", check_counts=False)) == 3


def test_published_frame_counts_are_checked(nyu_root):
    with pytest.raises(FormatError, match=r"joint_data.mat: 3 frames, expected 8252"):
        NyuSource(nyu_root[0], "test")


# ---------------------------------------------------------------------------- bad input


def test_no_root_names_the_environment_variable(monkeypatch):
    monkeypatch.delenv(nyu.ENV_ROOT, raising=False)
    with pytest.raises(ValueError, match="HANDPOSE_NYU_ROOT"):
        NyuSource(split="test")


def test_missing_root_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        NyuSource(tmp_path / "nowhere", "test")


def test_missing_mat_file(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train/joint_data.mat"):
        NyuSource(tmp_path, "train")


def test_mat_without_the_expected_variables(tmp_path):
    path = tmp_path / "joint_data.mat"
    scipy.io.savemat(path, {"joint_uvd": np.zeros((3, 2, 36, 3))})
    with pytest.raises(
        FormatError, match=r"joint_data.mat: missing variable\(s\) \['joint_xyz', 'joint_names'\]"
    ):
        read_joint_data(path)


def test_mat_with_wrong_array_shape(tmp_path):
    path = tmp_path / "joint_data.mat"
    cell = np.empty((1, 36), dtype=object)
    cell[0, :] = JOINT_NAMES
    scipy.io.savemat(
        path,
        {
            "joint_uvd": np.zeros((3, 2, 14, 3)),
            "joint_xyz": np.zeros((3, 2, 14, 3)),
            "joint_names": cell,
        },
    )
    with pytest.raises(
        FormatError, match=r"joint_uvd has shape \(3, 2, 14, 3\), expected \(3, N, 36, 3\)"
    ):
        read_joint_data(path)


def test_file_that_is_not_a_mat(tmp_path):
    path = tmp_path / "joint_data.mat"
    path.write_text("not a matlab file\n")
    with pytest.raises(FormatError, match=r"joint_data.mat: not a readable MATLAB"):
        read_joint_data(path)


def test_missing_image_names_the_file(nyu_root):
    root = nyu_root[0]
    (root / "test" / "depth_1_0000002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"depth_1_0000002.png"):
        NyuSource(root, "test", check_counts=False)[1]


def test_truncated_png_names_the_file(nyu_root):
    path = nyu_root[0] / "test" / "depth_1_0000001.png"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(FormatError, match=r"depth_1_0000001.png: unreadable PNG"):
        read_depth_png(path)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((240, 320, 3), np.uint8), np.zeros((480, 640), np.uint16)],
    ids=["wrong-size", "single-channel"],
)
def test_wrong_png_names_the_file_and_what_was_expected(tmp_path, pixels):
    path = tmp_path / "depth_1_0000001.png"
    Image.fromarray(pixels).save(path)
    with pytest.raises(
        FormatError, match=r"depth_1_0000001.png: image is .*expected a \(480, 640\) RGB"
    ):
        read_depth_png(path)


def test_bad_arguments(nyu_root):
    with pytest.raises(ValueError, match="unknown NYU split"):
        NyuSource(nyu_root[0], "validation")
    with pytest.raises(ValueError, match="kinect"):
        read_joint_data(nyu_root[0] / "test" / "joint_data.mat", kinect=3)
    with pytest.raises(IndexError):
        NyuSource(nyu_root[0], "test", check_counts=False)[3]
