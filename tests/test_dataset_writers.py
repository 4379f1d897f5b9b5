"""Writers of the real ICVL / NYU on-disk formats, read back by the package's own readers."""

import numpy as np
import pytest

from handpose_lib import published
from handpose_lib.camera import NYU
from handpose_lib.datasets import writers
from handpose_lib.datasets.icvl import IcvlSource
from handpose_lib.datasets.nyu import NyuSource, read_joint_data
from handpose_lib.datasets.published_split import check_published_test_split
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.synthetic_nyu import SyntheticNyuSource, icvl_to_nyu36
from handpose_lib.joints import NYU_EVAL_JOINT_IDS
from handpose_lib.uvd_format import FormatError


def test_icvl_dataset_round_trip(tmp_path):
    train, test = SyntheticSource(3, seed=1), SyntheticSource(5, seed=2)
    subsets = {"test_seq_1": [0, 1], "test_seq_2": [2, 3, 4]}
    writers.write_icvl_dataset(tmp_path, train, test, test_subsets=subsets)
    assert (tmp_path / "Training" / "labels.txt").is_file()
    assert (tmp_path / "Testing" / "Depth" / "test_seq_2" / "image_0002.png").is_file()
    read_train = IcvlSource(tmp_path, "train")
    assert read_train.names == [train.name(i) for i in range(3)]
    np.testing.assert_array_equal(read_train[1].depth_mm, train[1].depth_mm)
    read_test = IcvlSource(tmp_path, "test", check_counts=False)
    assert read_test.names[2] == "test_seq_2/image_0000.png"
    for i in range(5):
        np.testing.assert_array_equal(read_test[i].depth_mm, test[i].depth_mm)
        np.testing.assert_allclose(read_test[i].uvd, test[i].uvd, atol=5e-4)
    with pytest.raises(FormatError, match=r"test_seq_1.txt: 2 frames, expected 702"):
        IcvlSource(tmp_path, "test")


def test_icvl_test_writer_needs_the_published_size_or_explicit_subsets(tmp_path):
    with pytest.raises(ValueError, match=r"3 frames; the published ICVL test split has 1596"):
        writers.write_icvl_test(tmp_path, SyntheticSource(3))
    with pytest.raises(ValueError, match=r"unknown ICVL test sequences \['test_seq_3'\]"):
        writers.write_icvl_test(tmp_path, SyntheticSource(3), {"test_seq_3": [0]})
    with pytest.raises(ValueError, match="ICVL-layout source"):
        writers.write_icvl_test(tmp_path, SyntheticNyuSource(2), {"test_seq_1": [0]})


def test_icvl_parallel_writing_matches_serial(tmp_path):
    source = SyntheticSource(6, seed=4)
    a = writers.write_icvl_train(tmp_path / "a", source)
    b = writers.write_icvl_train(tmp_path / "b", source, workers=2)
    assert a.read_text() == b.read_text()


def test_nyu_labels_put_each_evaluated_joint_on_its_icvl_joint():
    hand = SyntheticNyuSource(1, seed=0).hand(0).joints_xyz_mm
    xyz36 = icvl_to_nyu36(hand)
    eval14 = xyz36[list(NYU_EVAL_JOINT_IDS)]
    # NYU order: pinky T/R, ring T/R, middle T/R, index T/R (R = ICVL mid), thumb T, R2, R1.
    icvl_ids = [15, 14, 12, 11, 9, 8, 6, 5, 3, 2, 1]
    np.testing.assert_allclose(eval14[:11], hand[icvl_ids])
    assert np.linalg.norm(eval14[11] - eval14[12]) == pytest.approx(40.0)  # two wrist points


def test_nyu_split_round_trip(tmp_path):
    source = SyntheticNyuSource(3, seed=5)
    frames = [source[i] for i in range(3)]
    xyz36 = np.stack([source.joint_xyz36(i) for i in range(3)])
    mat = writers.write_nyu_split(tmp_path, "test", [f.depth_mm for f in frames], xyz36)
    assert mat == tmp_path / "test" / "joint_data.mat"
    assert (tmp_path / "test" / "depth_1_0000003.png").is_file()
    labels = read_joint_data(mat, joint_ids=None)
    assert labels.uvd.shape == (3, 36, 3)
    assert labels.joint_names[0] == "F1_KNU3_A"
    np.testing.assert_allclose(labels.xyz_mm, xyz36)
    read = NyuSource(tmp_path, "test", check_counts=False)
    assert len(read) == 3
    assert read[2].name == "test/depth_1_0000003.png"
    for i in range(3):
        np.testing.assert_array_equal(read[i].depth_mm, frames[i].depth_mm)
        np.testing.assert_allclose(read[i].uvd, frames[i].uvd, atol=1e-9)
        np.testing.assert_allclose(NYU.uvd_to_xyz(read[i].uvd), xyz36[i, list(NYU_EVAL_JOINT_IDS)])
    with pytest.raises(FormatError, match=r"joint_data.mat: 3 frames, expected 8252"):
        NyuSource(tmp_path, "test")


def test_nyu_writer_rejects_wrong_shapes(tmp_path):
    depth = [np.zeros((480, 640))]
    with pytest.raises(ValueError, match=r"joint_xyz must be \(N, 36, 3\), got \(1, 14, 3\)"):
        writers.write_nyu_split(tmp_path, "test", depth, np.zeros((1, 14, 3)))
    with pytest.raises(ValueError, match="2 depth maps for 1 labelled frames"):
        writers.write_nyu_split(tmp_path, "test", depth * 2, np.ones((1, 36, 3)))
    with pytest.raises(ValueError, match="unknown NYU split 'val'"):
        writers.write_nyu_split(tmp_path, "val", depth, np.ones((1, 36, 3)))


def test_missing_dataset_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Testing: folder not found; an ICVL root holds"):
        IcvlSource(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match=r"train: folder not found; an NYU root holds"):
        NyuSource(tmp_path, "train")


def test_published_split_check(published_dir):
    uvd = published.load_labels("icvl", published_dir)
    names = published.load_test_list("icvl", published_dir)
    check_published_test_split("icvl", uvd.round(3), names, "Testing", published_dir)
    swapped = names[:]
    swapped[3], swapped[4] = swapped[4], swapped[3]
    with pytest.raises(FormatError, match=r"Testing: test frame 3 is 'test_seq_1/image_0004.png'"):
        check_published_test_split("icvl", uvd, swapped, "Testing", published_dir)
    with pytest.raises(FormatError, match=r"labels \(702, 16, 3\), the published icvl test set"):
        check_published_test_split("icvl", uvd[:702], None, "Testing", published_dir)
    moved = uvd.copy()
    moved[[10, 11]] = moved[[11, 10]]
    with pytest.raises(FormatError, match=r"labels of 2 test frames differ .* frame 10"):
        check_published_test_split("icvl", moved, None, "Testing", published_dir)
