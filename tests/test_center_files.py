"""Community centre files (V2V-PoseNet / DeepPrior++ format): read, write, convert, evaluate."""

import numpy as np
import pytest
import scipy.io

from handpose_lib import center_files, centers, conventions, published
from handpose_lib.camera import ICVL, NYU, camera_for
from handpose_lib.uvd_format import FormatError


def _labels(camera, n=4, seed=0):
    rng = np.random.default_rng(seed)
    centre = np.column_stack(
        [rng.uniform(-50, 50, n), rng.uniform(-50, 50, n), rng.uniform(300, 600, n)]
    )
    xyz = centre[:, None, :] + rng.normal(0, 30, (n, 14, 3))
    return camera.xyz_to_uvd(xyz)


def test_round_trip_with_invalid_frames(tmp_path):
    xyz = np.array([[1.5, -2.25, 400.0], [np.nan] * 3, [-10.0, 20.0, 350.125]])
    path = center_files.write_center_file(tmp_path / "c.txt", xyz)
    assert path.read_text().splitlines()[1] == "invalid"
    read = center_files.read_center_file(path, expected_frames=3)
    assert read.invalid_count == 1
    assert read.valid.tolist() == [True, False, True]
    np.testing.assert_allclose(read.xyz_mm[read.valid], xyz[[0, 2]])
    assert "1 marked 'invalid'" in read.summary()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 300\n1 two 300\n", r"c.txt:2: '1 two 300' is not numeric"),
        ("1 2 300\n1 2\n", r"c.txt:2: 2 fields, expected 'x y z'"),
        ("1 nan 300\n", r"c.txt:1: non-finite centre"),
        ("1 2 inf\n", r"c.txt:1: non-finite centre"),
        ("1 2 -5\n", r"c.txt:1: centre depth z = -5.0 mm"),
        ("\n", r"c.txt: no centres"),
    ],
)
def test_bad_lines_are_named(tmp_path, text, message):
    (tmp_path / "c.txt").write_text(text)
    with pytest.raises(FormatError, match=message):
        center_files.read_center_file(tmp_path / "c.txt")


def test_frame_count_checked_against_the_split(tmp_path):
    center_files.write_center_file(tmp_path / "c.txt", np.tile([0.0, 0.0, 400.0], (702, 1)))
    assert len(center_files.read_split_centers(tmp_path / "c.txt", "icvl", "test_seq_1")) == 702
    with pytest.raises(FormatError, match=r"702 centres, expected 1596"):
        center_files.read_split_centers(tmp_path / "c.txt", "icvl", "test")


@pytest.mark.parametrize("camera", [ICVL, NYU])
def test_uvd_conversion_follows_the_dataset_y_direction(camera):
    uvd = np.array([[camera.cx + 10.0, camera.cy - 20.0, 500.0]])  # above the principal point
    xyz = center_files.uvd_to_centers(uvd, camera)
    assert (xyz[0, 1] > 0) == camera.y_up  # NYU / V2V: y up; ICVL: y down
    np.testing.assert_allclose(center_files.centers_to_uvd(xyz, camera), uvd)
    assert np.isnan(center_files.centers_to_uvd(np.full((1, 3), np.nan), camera)).all()


def test_invalid_frames_fall_back_and_are_reported(tmp_path):
    xyz = np.array([[0.0, 0.0, 500.0], [np.nan] * 3])
    read = center_files.read_center_file(center_files.write_center_file(tmp_path / "c.txt", xyz))
    com_uvd = np.array([[1.0, 2.0, 3.0], [160.0, 120.0, 480.0]])
    resolved = center_files.resolve_centers(read, com_uvd, ICVL)
    np.testing.assert_allclose(resolved.uvd, [[160.0, 120.0, 500.0], [160.0, 120.0, 480.0]])
    assert resolved.from_file.tolist() == [True, False]
    assert "1 marked 'invalid' use the CoM instead" in resolved.message
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        center_files.resolve_centers(read, com_uvd[:1], ICVL)


def test_evaluation_against_centroid_and_palm(tmp_path):
    labels = _labels(NYU)
    xyz = NYU.uvd_to_xyz(labels)
    centroid = xyz.mean(axis=1)
    shifted = centroid + np.array([[3.0, 4.0, 0.0], [0, 0, 15.0], [0, 25.0, 0], [0, 0, 0]])
    shifted[3] = np.nan
    errors = center_files.evaluate_centers(shifted, labels, "nyu", NYU)
    np.testing.assert_allclose(errors.errors_mm, [5.0, 15.0, 25.0])
    assert (errors.invalid, errors.frames) == (1, 4)
    assert [errors.within(t) for t in (10, 20, 30)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert errors.to_dict()["mean (mm)"] == pytest.approx(15.0)
    palm = center_files.evaluate_centers(xyz[:, 13], labels, "nyu", NYU, reference="palm")
    assert palm.mean_mm == pytest.approx(0.0, abs=1e-9)
    read = center_files.read_center_file(
        center_files.write_center_file(tmp_path / "c.txt", shifted, decimals=6)
    )
    from_file = center_files.evaluate_center_file(read, labels, "nyu", NYU)
    np.testing.assert_allclose(from_file.errors_mm, errors.errors_mm, atol=1e-5)
    with pytest.raises(FormatError, match="4 centres for 3 labelled frames"):
        center_files.evaluate_center_file(read, labels[:3], "nyu", NYU)


def test_localization_centres_written_in_the_community_format(tmp_path):
    uvd = np.array([[300.0, 200.0, 700.0], [320.0, 240.0, 650.5]])
    path = center_files.write_uvd_centers(tmp_path / "loc.txt", uvd, NYU)
    read = center_files.read_center_file(path, expected_frames=2)
    np.testing.assert_allclose(read.xyz_mm, NYU.uvd_to_xyz(uvd), atol=5e-4)
    np.testing.assert_allclose(center_files.centers_to_uvd(read.xyz_mm, NYU), uvd, atol=1e-3)


def test_compare_center_sources_scores_com_locnet_and_files_alike(tmp_path):
    labels = _labels(ICVL, n=6, seed=3)
    centroid = ICVL.uvd_to_xyz(labels).mean(axis=1)
    offset = np.array([[1.0, 0.0, 0.0]])
    estimates = centers.CenterEstimates(
        com_uvd=ICVL.xyz_to_uvd(centroid + 25.0 * offset),
        refined_uvd=ICVL.xyz_to_uvd(centroid + 5.0 * offset),
        joints_uvd=labels,
        dataset="icvl",
    )
    xyz = centroid + 15.0 * offset
    xyz[[1, 4]] = np.nan
    file = center_files.write_center_file(tmp_path / "center_test_refined.txt", xyz)
    # A file of the whole split (12 frames) of which these 6 are every other one.
    whole = np.repeat(xyz, 2, axis=0)
    whole[1::2] = 0.0, 0.0, 999.0
    whole_file = center_files.write_center_file(tmp_path / "whole.txt", whole)
    table = centers.compare_center_sources(
        estimates, {"V2V": file, "V2V whole": whole_file}, frame_indices=np.arange(0, 12, 2)
    )
    assert list(table.index) == [centers.COM_LABEL, centers.REFINED_LABEL, "V2V", "V2V whole"]
    np.testing.assert_allclose(table["mean (mm)"], [25.0, 5.0, 15.0, 15.0], atol=1e-3)
    assert table["invalid"].tolist() == [0, 0, 2, 2]
    assert table.loc["V2V", "frames"] == 6
    assert table.loc[centers.REFINED_LABEL, ["within 10 mm", "within 20 mm"]].tolist() == [1, 1]
    assert table.loc["V2V", ["within 10 mm", "within 20 mm"]].tolist() == [0, 1]
    palm = centers.compare_center_sources(estimates, reference="palm")
    assert (palm["reference"] == "palm").all()
    assert len(palm) == 2
    with pytest.raises(
        FormatError, match=r"whole.txt: 12 centres for 6 frames; pass frame_indices"
    ):
        centers.compare_center_sources(estimates, {"V2V whole": whole_file})


# --- registered centre files (V2V-PoseNet's refined centres, as AWR and A2J ship them) ------


def test_every_registered_centre_file_reads_with_its_split_frame_count(published_dir):
    expected = {("nyu", "train"): "xyz", ("nyu", "test"): "xyz", ("icvl", "test"): "uvd"}
    assert {(d, s) for d, s, _ in center_files.available_centers()} == set(expected)
    for (dataset, split), space in expected.items():
        got = center_files.registered_centers(dataset, split, local_dir=published_dir)
        frames = conventions.split_frames(dataset, split)
        assert (got.dataset, got.split, got.source, got.space) == (dataset, split, "v2v", space)
        assert got.values.shape == (frames, 3)
        assert got.valid.all()  # no frame is marked invalid in these files
        assert "V2V-PoseNet" in got.description


def test_no_icvl_training_file_names_the_registered_alternatives():
    with pytest.raises(ValueError, match=r"no registered centre file for icvl train") as err:
        center_files.registered_centers("icvl", "train")
    assert "nyu train (source 'v2v'), nyu test (source 'v2v'), icvl test (source 'v2v')" in str(
        err.value
    )
    with pytest.raises(ValueError, match=r"from source 'locnet'; registered: nyu train"):
        center_files.registered_centers("nyu", "test", source="locnet")
    with pytest.raises(ValueError, match="is a predictions file, not a centre file"):
        center_files.read_registered_centers("ICCV19_ICVL_A2J")


# Measured on the published test labels (center_files' module docstring): mean 3D distance of
# the V2V-PoseNet centres to the joint centroid and to the palm joint, package intrinsics.
MEASURED_MM = {
    "nyu": {"centroid": 21.24, "palm": 31.14},
    "icvl": {"centroid": 13.33, "palm": 44.32},
}


@pytest.mark.parametrize("dataset", ["nyu", "icvl"])
def test_v2v_centres_lie_near_the_joint_centroid_not_the_palm(dataset, published_dir):
    camera = camera_for(dataset)
    labels = published.load_labels(dataset, published_dir)
    got = center_files.registered_centers(dataset, "test", local_dir=published_dir)
    as_file = got.as_center_file(camera)
    errors = {
        ref: center_files.evaluate_center_file(as_file, labels, dataset, camera, ref).mean_mm
        for ref in ("centroid", "palm")
    }
    assert errors == pytest.approx(MEASURED_MM[dataset], abs=0.005)
    # Closer to the centroid than to any single joint.
    xyz = camera.uvd_to_xyz(labels)
    per_joint = np.linalg.norm(xyz - got.xyz_mm(camera)[:, None], axis=2).mean(axis=0)
    assert errors["centroid"] < per_joint.min()
    np.testing.assert_allclose(
        center_files.centers_to_uvd(got.xyz_mm(camera), camera), got.uvd(camera), atol=1e-9
    )


def _save_mat(path, **variables):
    scipy.io.savemat(path, variables)
    return path


def test_mat_centres_read_as_uvd_and_bad_ones_are_named(tmp_path):
    uvd = np.array([[160.0, 120.0, 400.0], [100.0, 90.0, 350.5]])
    good = _save_mat(tmp_path / "c.mat", centre_pixel=uvd[:, None, :])
    np.testing.assert_array_equal(center_files.read_mat_centers(good, expected_frames=2), uvd)
    cases = {
        "other.mat": (
            {"centers": uvd},
            r"other\.mat: no variable 'centre_pixel' \(found \['centers'\]\)",
        ),
        "shape.mat": ({"centre_pixel": uvd[:, :2]}, r"shape\.mat: centre_pixel has shape \(2, 2\)"),
        "depth.mat": (
            {"centre_pixel": uvd * [1, 1, -1]},
            r"depth\.mat: centre_pixel\[0\] = \[160\.0, 120\.0, -400\.0\]: expected finite u v "
            r"and d > 0",
        ),
        "nan.mat": (
            {"centre_pixel": np.where(uvd > 350, np.nan, uvd)},
            r"nan\.mat: centre_pixel\[0\]",
        ),
    }
    for name, (variables, message) in cases.items():
        with pytest.raises(FormatError, match=message):
            center_files.read_mat_centers(_save_mat(tmp_path / name, **variables))
    with pytest.raises(FormatError, match=r"c\.mat: 2 centres in centre_pixel, expected 1596"):
        center_files.read_mat_centers(good, expected_frames=1596)
    (tmp_path / "text.mat").write_text("1 2 3\n")
    with pytest.raises(FormatError, match=r"text\.mat: not a readable MATLAB \.mat file"):
        center_files.read_mat_centers(tmp_path / "text.mat")
