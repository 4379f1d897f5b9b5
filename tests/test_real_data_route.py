"""The real-data route end to end on small datasets in the exact ICVL and NYU on-disk formats
(written by `datasets.writers` from the synthetic renderer): train, predict, evaluate, community
centre files, and the errors a user meets on this route. Smoke sizes."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from handpose_lib import center_files, centers, evaluate, predict, published, reproduce, train
from handpose_lib.camera import ICVL
from handpose_lib.datasets import icvl, writers
from handpose_lib.datasets.icvl import IcvlSource
from handpose_lib.datasets.published_split import check_published_source
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.synthetic_nyu import SyntheticNyuSource
from handpose_lib.preprocess import joints_center
from handpose_lib.training.config import RunConfig, SourceSpec
from handpose_lib.training.data import build_dataset, build_source
from handpose_lib.training.inference import load_model
from handpose_lib.uvd_format import FormatError, read_uvd

ICVL_TEST_SUBSETS = {"test_seq_1": [0, 1, 2], "test_seq_2": [3, 4, 5, 6, 7]}
TRAIN_FRAMES, TEST_FRAMES = 16, 8  # the smoke profile's training and validation frames


# End to end (trainings through the CLI, datasets written to disk): slow.
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _quiet_subset_warnings():
    # The small splits differ from the distribution's frame counts, which build_source warns
    # about (checked in test_small_splits_are_read_with_a_warning).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*the distribution's has")
        yield


def _write_nyu(root: Path, split: str, n: int, seed: int) -> None:
    source = SyntheticNyuSource(n, seed=seed)
    depth = [source[i].depth_mm for i in range(n)]
    xyz36 = np.stack([source.joint_xyz36(i) for i in range(n)])
    writers.write_nyu_split(root, split, depth, xyz36)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """An ICVL root (Training/, Testing/ with test_seq_1 and _2) and an NYU root (train/,
    test/), written once."""
    base = tmp_path_factory.mktemp("datasets")
    writers.write_icvl_dataset(
        base / "ICVL",
        SyntheticSource(TRAIN_FRAMES, seed=11),
        SyntheticSource(TEST_FRAMES, seed=12),
        test_subsets=ICVL_TEST_SUBSETS,
    )
    _write_nyu(base / "NYU", "train", TRAIN_FRAMES, seed=13)
    _write_nyu(base / "NYU", "test", TEST_FRAMES, seed=14)
    return {"icvl": base / "ICVL", "nyu": base / "NYU"}


@pytest.fixture(scope="module")
def runs(roots, tmp_path_factory) -> dict[str, Path]:
    """Smoke attention runs on each dataset and a LocNet run on ICVL, trained by the CLI."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*the distribution's has")
        for name, data, model in (
            ("icvl", "icvl", "attention"),
            ("nyu", "nyu", "attention"),
            ("locnet", "icvl", "locnet"),
        ):
            run_dir = base / name
            args = ["--run-dir", str(run_dir), "--profile", "smoke", "--model", model]
            assert train.main([*args, "--data", data, "--data-root", str(roots[data])]) == 0
            out[name] = run_dir
    return out


@pytest.mark.parametrize("dataset", ["icvl", "nyu"])
def test_train_predict_evaluate(dataset, roots, runs, tmp_path, capsys):
    config = RunConfig.load(runs[dataset])
    assert config.data.train.root == str(roots[dataset].resolve())
    assert (config.data.train.kind, config.data.val.split) == (dataset, "test")
    assert config.model.num_joints == {"icvl": 16, "nyu": 14}[dataset]
    capsys.readouterr()

    preds, labels = tmp_path / "preds.txt", tmp_path / "labels.txt"
    args = [str(runs[dataset]), str(preds), "--source", dataset, "--root", str(roots[dataset])]
    assert predict.main([*args, "--labels-out", str(labels)]) == 0
    said = capsys.readouterr().out
    assert f"not the published {dataset.upper()} test set" in said
    assert f"{TEST_FRAMES} frames, mean error" in said
    joints = config.model.num_joints
    read_uvd(preds, joints, expected_frames=TEST_FRAMES)  # the format, one line per frame
    gt_uvd = read_uvd(labels, joints, expected_frames=TEST_FRAMES)
    truth = build_source(SourceSpec(dataset, root=str(roots[dataset]), split="test"))
    np.testing.assert_allclose(gt_uvd, np.stack([f.uvd for f in truth]), atol=5e-4)

    assert evaluate.main([dataset, str(preds), "--gt", str(labels), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["methods"][0]
    assert (scored["frames"], scored["subset"]) == (TEST_FRAMES, "all")
    said_mean = float(said.split("mean error ")[1].split(" mm")[0])
    assert scored["mean_error_mm"] == pytest.approx(said_mean, abs=2e-3)
    # The number, recomputed from the two files with the pinhole model written out here (the
    # datasets' published intrinsics), so a wrong camera in predict or evaluate cannot pass.
    assert scored["mean_error_mm"] == pytest.approx(
        _mean_error_by_hand(np.loadtxt(preds), np.loadtxt(labels), dataset), abs=2e-3
    )


# fx, fy, cx, cy of the depth cameras: ICVL (DeepPrior's), NYU (its Kinect, camera 1).
INTRINSICS = {"icvl": (241.42, 241.42, 160.0, 120.0), "nyu": (588.03, 587.07, 320.0, 240.0)}


def _mean_error_by_hand(pred: np.ndarray, gt: np.ndarray, dataset: str) -> float:
    """Mean 3D joint error in mm of two (N, 3J) uvd arrays; the sign of y cancels."""
    fx, fy, cx, cy = INTRINSICS[dataset]

    def xyz(uvd):
        u, v, d = uvd[..., 0::3], uvd[..., 1::3], uvd[..., 2::3]
        return np.stack([(u - cx) * d / fx, (v - cy) * d / fy, d], axis=-1)

    return float(np.linalg.norm(xyz(pred) - xyz(gt), axis=-1).mean())


def test_small_splits_are_read_with_a_warning(roots):
    with pytest.warns(UserWarning, match=r"NYU train split has 16 frames, the distribution's"):
        source = build_source(SourceSpec("nyu", root=str(roots["nyu"]), split="train"))
    assert len(source) == TRAIN_FRAMES
    assert source[3].name == "train/depth_1_0000004.png"


def _community_centres(source, invalid: list[int], camera) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) true joint centroids in mm and (N,) validity, `invalid` frames marked."""
    xyz = np.stack([camera.uvd_to_xyz(joints_center(f.uvd, f.camera)) for f in source])
    valid = np.ones(len(xyz), dtype=bool)
    valid[invalid] = False
    return xyz, valid


def test_community_centre_file_crops_prediction_and_training(roots, runs, tmp_path, capsys):
    root = str(roots["icvl"])
    test = build_source(SourceSpec("icvl", root=root, split="test"))
    xyz, valid = _community_centres(test, [1, 6], ICVL)
    path = center_files.write_center_file(tmp_path / "center_test_refined.txt", xyz, valid)

    args = [str(runs["icvl"]), str(tmp_path / "p.txt"), "--source", "icvl", "--root", root]
    assert predict.main([*args, "--centers", str(path)]) == 0
    said = capsys.readouterr().out
    assert f"{path}: 8 centres; 2 marked 'invalid' use the CoM instead" in said

    # The crops: file centres where valid, the CoM where invalid.
    _, config = load_model(runs["icvl"])
    spec = SourceSpec("icvl", root=root, split="test", centers=f"xyz:{path}")
    at_file = build_dataset(config, "val", spec, report=lambda _: None)
    at_com = build_dataset(config, "val", SourceSpec("icvl", root=root, split="test"))
    for index in (0, 1):
        crop_center = at_file.sample(index)["center_uvd"]
        expected = ICVL.xyz_to_uvd(xyz[index]) if valid[index] else at_com.sample(1)["center_uvd"]
        np.testing.assert_allclose(crop_center, expected, atol=1e-3)  # file: 3 decimals (mm)

    # A file for the whole split serves an evenly spaced subset of it.
    subset = SourceSpec("icvl", root=root, split="test", num_frames=4, centers=f"xyz:{path}")
    picked = build_dataset(config, "val", subset, report=lambda _: None)
    index = int(picked.source.indices[2])
    np.testing.assert_allclose(
        picked.sample(2)["center_uvd"], ICVL.xyz_to_uvd(xyz[index]), atol=1e-3
    )
    with pytest.raises(FormatError, match=r"8 centres, expected 16: one line per frame"):
        build_dataset(config, "train", SourceSpec("icvl", root=root, centers=f"xyz:{path}"))

    # Training crops at a centre file (train split: 16 lines).
    train_split = build_source(SourceSpec("icvl", root=root, split="train"))
    xyz_train, valid_train = _community_centres(train_split, [0], ICVL)
    train_file = center_files.write_center_file(tmp_path / "train.txt", xyz_train, valid_train)
    run_dir = tmp_path / "run"
    base = ["--run-dir", str(run_dir), "--profile", "smoke", "--data", "icvl"]
    extra = ["--data-root", root, "--centers", str(train_file), "--set", "train.epochs=1"]
    assert train.main([*base, *extra]) == 0
    assert f"{train_file}: 16 centres; 1 marked 'invalid'" in capsys.readouterr().out
    assert RunConfig.load(run_dir).data.train.centers == f"xyz:{train_file.resolve()}"


def test_locnet_centres_in_the_community_format(roots, runs, tmp_path, capsys):
    root = str(roots["icvl"])
    out = tmp_path / "center_test_locnet.txt"
    args = [str(runs["locnet"]), str(out), "--source", "icvl", "--root", root]
    assert predict.main([*args, "--format", "centers"]) == 0
    written = center_files.read_center_file(out, expected_frames=TEST_FRAMES)
    assert written.invalid_count == 0

    # The same code scores the written file and the network's own centres.
    model, config = load_model(runs["locnet"])
    val = build_dataset(config, "val", SourceSpec("icvl", root=root, split="test"))
    estimates = centers.localize(model, val)
    table = centers.compare_center_sources(estimates, {"LocNet file": out})
    assert list(table.index) == [centers.COM_LABEL, centers.REFINED_LABEL, "LocNet file"]
    assert table.loc["LocNet file", "mean (mm)"] == pytest.approx(
        table.loc[centers.REFINED_LABEL, "mean (mm)"], abs=2e-3
    )
    with pytest.raises(ValueError, match="--format centers writes hand centres"):
        predict.predict_split(runs["icvl"], tmp_path / "x.txt", fmt="centers")


def test_a_run_refuses_another_datasets_frames(roots, runs, tmp_path, capsys):
    args = [str(runs["icvl"]), str(tmp_path / "p.txt"), "--source", "nyu"]
    assert predict.main([*args, "--root", str(roots["nyu"])]) == 2
    err = capsys.readouterr().err
    assert f"{runs['icvl'] / 'config.json'}: a attention run trained on icvl data" in err
    assert f"cannot predict nyu frames (nyu test at {roots['nyu']})" in err
    assert not (tmp_path / "p.txt").exists()


def test_bad_dataset_folders_and_files_are_named(roots, tmp_path):
    args = ["--run-dir", str(tmp_path / "r"), "--profile", "smoke", "--data", "icvl"]
    with pytest.raises(FileNotFoundError, match=r"Training: folder not found; an ICVL root"):
        train.main([*args, "--data-root", str(tmp_path)])
    bad = tmp_path / "NYU" / "test"
    bad.mkdir(parents=True)
    mat = scipy.io.loadmat(roots["nyu"] / "test" / "joint_data.mat")
    variables = {k: v for k, v in mat.items() if not k.startswith("__")}
    variables["joint_uvd"] = mat["joint_uvd"][:, :, :14]
    scipy.io.savemat(bad / "joint_data.mat", variables)
    with pytest.raises(
        FormatError,
        match=r"joint_data.mat: joint_uvd has shape \(3, 8, 14, 3\), expected \(3, N, 36, 3\)",
    ):
        build_source(SourceSpec("nyu", root=str(tmp_path / "NYU"), split="test"))


def _published_icvl_labels_only(root: Path, published_dir: Path, swap: bool) -> IcvlSource:
    """An ICVL test split with the published labels and names (no images: the published check
    reads labels only), optionally with two frames swapped."""
    uvd = published.load_labels("icvl", published_dir)
    names = published.load_test_list("icvl", published_dir)
    if swap:
        names[3], names[4] = names[4], names[3]
        uvd[[3, 4]] = uvd[[4, 3]]
    for sequence, (start, stop) in (("test_seq_1", (0, 702)), ("test_seq_2", (702, 1596))):
        icvl.write_label_file(
            root / "Testing" / f"{sequence}.txt", names[start:stop], uvd[start:stop]
        )
    (root / "Testing" / "Depth").mkdir(exist_ok=True)
    return IcvlSource(root, "test")


def test_published_test_split_checked_before_it_stands_for_the_published_one(
    published_dir, runs, roots, tmp_path
):
    check_published_source(_published_icvl_labels_only(tmp_path / "ok", published_dir, False))
    swapped = tmp_path / "swapped"
    _published_icvl_labels_only(swapped, published_dir, True)
    spec = SourceSpec("icvl", root=str(swapped), split="test")
    with pytest.raises(
        FormatError, match=r"swapped/Testing: test frame 3 is 'test_seq_1/image_0004"
    ):
        predict.predict_split(
            runs["icvl"],
            tmp_path / "p.txt",
            spec,
            require_published=True,
            published_dir=published_dir,
        )
    small = SourceSpec("icvl", root=str(roots["icvl"]), split="test")
    with pytest.raises(FormatError, match=r"labels \(8, 16, 3\), the published icvl test set"):
        predict.predict_split(
            runs["icvl"],
            tmp_path / "p.txt",
            small,
            require_published=True,
            published_dir=published_dir,
        )
    assert not (tmp_path / "p.txt").exists()


# The notebooks whose data path differs by dataset: LocNet (02) and the pose network and its
# predictions at 16 joints (03) on ICVL here. On NYU (whose frames are the harder ones to
# read: .mat labels, RGB-packed depth, y growing upwards) all five notebooks run, notebook 01
# included, in the rehearsal's test (tests/test_rehearsal.py), at 14 joints; tests/test_icvl.py
# checks the ICVL reader. Each notebook costs a kernel start.
RUNNER_NOTEBOOKS = {"icvl": "02,03"}


@pytest.mark.notebooks
@pytest.mark.parametrize("dataset", ["icvl"])  # scheduled one by one (conftest.py)
def test_runner_runs_the_notebooks_on_the_dataset_files(roots, tmp_path, dataset):
    """`python -m handpose_lib.reproduce --profile smoke --dataset icvl|nyu --data-root ...
    --notebooks ...`: the notebooks on the files, their own checks included. Table 1
    (notebook 05) would keep the printed "Ours" row for these predictions, since this test
    split is not the published one, and the runner says why."""
    out = tmp_path / "run"
    argv = ["--profile", "smoke", "--dataset", dataset, "--data-root", str(roots[dataset])]
    argv += ["--notebooks", RUNNER_NOTEBOOKS[dataset], "--output", str(out)]
    assert reproduce.main([*argv, "--figures-dir", str(tmp_path / "f")]) == 0
    executed = sorted(p.name for p in out.glob("[0-9][0-9]_*.ipynb"))
    assert executed == [p.name for p in reproduce.select_notebooks(RUNNER_NOTEBOOKS[dataset])]
    # Predictions on the dataset's own test split, written by notebook 03 at LocNet centres.
    assert len(read_uvd(out / reproduce.OURS_PREDICTIONS, 16 if dataset == "icvl" else 14)) == 8
    stream = io.StringIO()
    assert reproduce.ours_parameters(dataset, str(roots[dataset]), out, stream) == {}
    assert "Table 1 keeps the printed 'Ours' row: " in stream.getvalue()
