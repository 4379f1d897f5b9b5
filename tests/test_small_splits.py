"""A dataset split smaller than what the profile asks for stops with one line naming the
split, its size, the request and the override that fits (not a traceback from deep inside)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from handpose_lib import train
from handpose_lib.datasets import writers
from handpose_lib.datasets.synthetic_nyu import SyntheticNyuSource
from handpose_lib.training.config import SourceSpec
from handpose_lib.training.data import build_source

FRAMES = 4


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory):
    """An NYU root whose train and test splits hold 4 frames each."""
    root = tmp_path_factory.mktemp("small") / "NYU"
    source = SyntheticNyuSource(FRAMES, seed=3)
    depth = [source[i].depth_mm for i in range(FRAMES)]
    xyz36 = np.stack([source.joint_xyz36(i) for i in range(FRAMES)])
    for split in ("train", "test"):
        writers.write_nyu_split(root, split, depth, xyz36)
    return root


@pytest.fixture(autouse=True)
def _quiet_count_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*the distribution's has")
        yield


def test_a_split_smaller_than_asked_names_it_and_the_override(nyu_root):
    spec = SourceSpec("nyu", root=str(nyu_root), split="test", num_frames=8)
    with pytest.raises(ValueError, match=r"NYU test split has 4 frames, fewer than the 8") as err:
        build_source(spec)
    assert str(nyu_root) in str(err.value)
    assert "--set data.val.num_frames=0, or name a number up to 4" in str(err.value)
    assert len(build_source(SourceSpec("nyu", root=str(nyu_root), split="test"))) == FRAMES


def test_the_train_command_says_it_in_one_line(nyu_root, tmp_path, capsys):
    args = ["--run-dir", str(tmp_path / "run"), "--profile", "smoke", "--data", "nyu"]
    assert train.cli([*args, "--data-root", str(nyu_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: {nyu_root}: the NYU train split has 4 frames, fewer than the 16")
    assert err.endswith("--set data.train.num_frames=0, or name a number up to 4")
