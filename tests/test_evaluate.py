import json

import numpy as np
import pytest

from handpose_lib import evaluate, published, uvd_format


@pytest.fixture(scope="module")
def icvl_gt(published_dir):
    return published.load_labels("icvl", published_dir)


def test_perfect_predictions_have_zero_error(icvl_gt):
    result = evaluate.evaluate_uvd(icvl_gt, icvl_gt, "icvl", "gt")
    assert result.mean_error_mm == 0
    assert result.frames == 1596


# One ground-truth / predicted joint pair per frame, in uvd text as a prediction file holds it,
# with the camera-space distance computed by hand from the published intrinsics (written out
# here, not taken from the package): x = (u - cx) d / fx, y = (v - cy) d / fy for ICVL (fx = fy =
# 241.42, cx = 160, cy = 120); NYU (fx = 588.03, fy = 587.07, cx = 320, cy = 240) has y up,
# y = (cy - v) d / fy.
HAND_FRAMES = {
    "icvl": [
        # (100, -50, 400) vs (-100, 50, 500): off-axis at two depths; |(200, 100, 100)|.
        ("220.355 89.8225 400", "111.716 144.142 500", 60000**0.5),
        # (50, 0, 250) vs (0, 0, 250): 241.42 / 5 px at 250 mm.
        ("208.284 120 250", "160 120 250", 50.0),
    ],
    "nyu": [
        # (60, 80, 800) vs (-40, -120, 1000): |(100, 200, 200)| = 300 mm.
        ("364.10225 181.293 800", "296.4788 310.4484 1000", 300.0),
        # (0, 100, 1000) vs (0, 0, 1000): 58.707 px along v = 100 mm with fy (99.837 with fx).
        ("320 181.293 1000", "320 240 1000", 100.0),
    ],
}


@pytest.mark.parametrize(("dataset", "joints"), [("icvl", 16), ("nyu", 14)])
def test_file_computed_by_hand_gives_its_camera_space_error(dataset, joints, tmp_path):
    """Frame i holds pair i at every joint; the file is written as text, by hand."""
    frames = HAND_FRAMES[dataset]
    gt_path, pred_path = tmp_path / "gt.txt", tmp_path / "pred.txt"
    gt_path.write_text("".join(" ".join([gt] * joints) + "\n" for gt, _, _ in frames))
    pred_path.write_text("".join(" ".join([pred] * joints) + "\n" for _, pred, _ in frames))
    gt_uvd = uvd_format.read_uvd(gt_path, joints)
    result = evaluate.evaluate_file(pred_path, dataset, gt_uvd)
    expected = np.array([[mm] * joints for _, _, mm in frames])
    assert (result.subset, result.frames) == ("all", len(frames))
    np.testing.assert_allclose(result.errors_mm, expected, atol=1e-6)
    mean = sum(mm for _, _, mm in frames) / len(frames)  # ICVL 147.474, NYU 200
    assert result.mean_error_mm == pytest.approx(mean, abs=1e-6)
    np.testing.assert_allclose(result.per_joint_mm, mean, atol=1e-6)
    # The array route picks the same camera by the dataset's name.
    by_name = evaluate.evaluate_uvd(uvd_format.read_uvd(pred_path, joints), gt_uvd, dataset, "p")
    np.testing.assert_allclose(by_name.errors_mm, expected, atol=1e-6)


def test_on_the_real_labels_a_hand_computed_shift_is_measured(icvl_gt, tmp_path):
    """Every ICVL test joint moved 241.42 / 10 px right: at depth d that is d / 10 mm."""
    shifted = icvl_gt + np.array([24.142, 0.0, 0.0])
    path = uvd_format.write_uvd(tmp_path / "shifted.txt", shifted, decimals=4)
    result = evaluate.evaluate_file(path, "icvl", icvl_gt)
    np.testing.assert_allclose(result.errors_mm, icvl_gt[..., 2] / 10, atol=1e-3)
    assert result.mean_error_mm == pytest.approx(icvl_gt[..., 2].mean() / 10, abs=1e-4)


def test_partial_file_is_evaluated_on_its_subset(icvl_gt, tmp_path):
    path = uvd_format.write_uvd(tmp_path / "seq1.txt", icvl_gt[:702])
    result = evaluate.evaluate_file(path, "icvl", icvl_gt)
    assert (result.subset, result.frames) == ("test_seq_1", 702)
    assert result.mean_error_mm < 1e-3


def test_published_subset_files_are_marked(published_dir):
    results = evaluate.evaluate_published("icvl", ["DeepPrior", "V2V-PoseNet"], published_dir)
    assert [(r.subset, r.frames) for r in results] == [("test_seq_1", 702), ("all", 1596)]


def test_cli_json_on_a_file_outside_the_registry(icvl_gt, tmp_path, published_dir, capsys):
    noisy = icvl_gt + np.random.default_rng(0).normal(0, 1, icvl_gt.shape)
    path = uvd_format.write_uvd(tmp_path / "mine.txt", noisy)
    code = evaluate.main(
        ["icvl", str(path), "--json", "--names", "Mine", "--published-dir", str(published_dir)]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "icvl"
    (method,) = report["methods"]
    assert method["name"] == "Mine"
    assert method["file"] == str(path)
    assert method["frames"] == 1596
    assert len(method["per_joint_mm"]) == 16
    assert 0 < method["mean_error_mm"] < 5


def test_cli_table_output(published_dir, capsys):
    pred = published_dir / "nyu" / "results" / "CVPR18_NYU_V2V_PoseNet.txt"
    assert evaluate.main(["nyu", str(pred), "--published-dir", str(published_dir)]) == 0
    out = capsys.readouterr().out
    assert "CVPR18_NYU_V2V_PoseNet" in out
    assert "8.419" in out
    assert "Palm" in out


def test_cli_custom_ground_truth(tmp_path, capsys):
    gt = np.random.default_rng(2).uniform(100, 300, (3, 14, 3))
    gt_path = uvd_format.write_uvd(tmp_path / "gt.txt", gt)
    pred_path = uvd_format.write_uvd(tmp_path / "pred.txt", gt)
    assert evaluate.main(["nyu", str(pred_path), "--gt", str(gt_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["methods"][0]["mean_error_mm"] < 1e-3


def test_cli_reports_malformed_file_and_exits_2(tmp_path, published_dir, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n")
    assert evaluate.main(["icvl", str(bad), "--published-dir", str(published_dir)]) == 2
    assert "bad.txt:1: 3 values, expected 48" in capsys.readouterr().err


def test_cli_rejects_wrong_frame_count(tmp_path, icvl_gt, published_dir, capsys):
    path = uvd_format.write_uvd(tmp_path / "short.txt", icvl_gt[:100])
    assert evaluate.main(["icvl", str(path), "--published-dir", str(published_dir)]) == 2
    assert "short.txt: 100 frames, expected one of" in capsys.readouterr().err


def test_cli_names_must_match_files():
    with pytest.raises(SystemExit):
        evaluate.main(["icvl", "a.txt", "b.txt", "--names", "A"])


def test_subset_results_split_the_full_test_set(icvl_gt):
    noisy = icvl_gt + np.random.default_rng(3).normal(0, 2, icvl_gt.shape)
    result = evaluate.evaluate_uvd(noisy, icvl_gt, "icvl", "noisy")
    whole, seq1, seq2 = evaluate.subset_results(result)
    assert (whole.subset, seq1.subset, seq2.subset) == ("all", "test_seq_1", "test_seq_2")
    assert (seq1.frames, seq2.frames) == (702, 894)
    np.testing.assert_array_equal(seq2.errors_mm, result.errors_mm[702:])
    weighted = (seq1.mean_error_mm * 702 + seq2.mean_error_mm * 894) / 1596
    assert weighted == pytest.approx(whole.mean_error_mm)
    # A file that already covers one subset is not split further.
    part = evaluate.evaluate_uvd(noisy[:702], icvl_gt[:702], "icvl", "p", subset="test_seq_1")
    assert evaluate.subset_results(part) == [part]


def test_cli_by_subset_gives_nyu_subject_rows(published_dir, capsys):
    pred = published_dir / "nyu" / "results" / "CVPR18_NYU_V2V_PoseNet.txt"
    args = ["nyu", str(pred), "--published-dir", str(published_dir), "--by-subset"]
    assert evaluate.main([*args, "--json"]) == 0
    (method,) = json.loads(capsys.readouterr().out)["methods"]
    subjects = {s["subset"]: s for s in method["subsets"]}
    assert (subjects["subject_1"]["frames"], subjects["subject_2"]["frames"]) == (2440, 5812)
    weighted = (
        subjects["subject_1"]["mean_error_mm"] * 2440
        + subjects["subject_2"]["mean_error_mm"] * 5812
    ) / 8252
    assert weighted == pytest.approx(method["mean_error_mm"])
    assert f"{weighted:.3f}" == "8.419"
    assert evaluate.main(args) == 0
    out = capsys.readouterr().out
    assert "subject_1" in out
    assert "subject_2" in out
