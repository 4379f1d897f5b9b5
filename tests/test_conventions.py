"""The dataset conventions table: one place for every dataset number, each with a source."""

import io
import itertools
import tokenize
from pathlib import Path

import numpy as np
import pytest

import handpose_lib
from handpose_lib import camera, conventions, joints
from handpose_lib.datasets import icvl, nyu

# Numbers that only the conventions table may spell (as numeric literals in code; comments and
# docstrings may mention them).
KEY_LITERALS = {"241.42", "240.99", "240.96", "588.03", "587.07", "2440", "8252", "72757",
                "331006", "1596", "702", "894"}  # fmt: skip


def _numeric_literals(path: Path) -> set[tuple[str, int]]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {(t.string, t.start[0]) for t in tokens if t.type == tokenize.NUMBER}


def test_no_stray_copies_of_dataset_numbers_in_the_package():
    package = Path(handpose_lib.__file__).parent
    stray = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "conventions.py":
            continue
        for literal, line in _numeric_literals(path):
            normalized = literal.rstrip("0").rstrip(".") if "." in literal else literal
            if literal in KEY_LITERALS or normalized in KEY_LITERALS:
                stray.append(f"{path.relative_to(package)}:{line}: {literal}")
    assert not stray, "dataset numbers outside conventions.py:\n" + "\n".join(sorted(stray))


def test_every_entry_names_its_source():
    for row in conventions.rows():
        assert len(row["source"]) > 10, row


def test_cameras_and_joints_read_the_table():
    assert (camera.ICVL.fx, camera.ICVL.fy, camera.ICVL.cx, camera.ICVL.cy) == (
        241.42, 241.42, 160.0, 120.0,
    )  # fmt: skip
    assert (camera.ICVL_DISTRIBUTION.fx, camera.ICVL_DISTRIBUTION.fy) == (240.99, 240.96)
    assert (camera.NYU.fx, camera.NYU.fy, camera.NYU.y_up) == (588.03, 587.07, True)
    assert conventions.value("nyu", "eval_joint_ids") == joints.NYU_EVAL_JOINT_IDS
    assert len(joints.NYU_EVAL_JOINT_IDS) == joints.num_joints("nyu") == 14
    assert nyu.SPLIT_FRAMES == {"train": 72757, "test": 8252}
    assert icvl.TEST_SEQUENCES == ("test_seq_1", "test_seq_2")


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("icvl", {"all": (0, 1596), "test_seq_1": (0, 702), "test_seq_2": (702, 1596)}),
        ("nyu", {"all": (0, 8252), "subject_1": (0, 2440), "subject_2": (2440, 8252)}),
    ],
)
def test_test_subsets_tile_the_test_set(dataset, expected):
    spans = conventions.test_subsets(dataset)
    assert spans == expected
    parts = [span for name, span in spans.items() if name != "all"]
    assert parts[0][0] == 0
    assert parts[-1][1] == spans["all"][1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert conventions.subset_of_frame(dataset, parts[-1][0]) == list(spans)[-1]
    assert conventions.split_frames(dataset, list(spans)[1]) == parts[0][1]


def test_cube_per_dataset_and_deepprior_per_subject_cube():
    assert conventions.cube_mm("icvl") == 250.0
    assert conventions.cube_mm("nyu") == conventions.cube_mm("nyu", "subject_2") == 300.0
    assert conventions.cube_mm("nyu", "subject_2", per_subject=True) == 250.0
    assert conventions.cube_mm("nyu", "subject_1", per_subject=True) == 300.0
    with pytest.raises(KeyError, match="subject_3"):
        conventions.cube_mm("nyu", "subject_3", per_subject=True)


def test_unknown_dataset_and_key_are_named():
    with pytest.raises(ValueError, match="'msra'"):
        conventions.value("msra", "cube_mm")
    with pytest.raises(KeyError, match="'focal'"):
        conventions.value("icvl", "focal")


@pytest.mark.parametrize("dataset", ["icvl", "nyu"])
def test_skeleton_is_a_tree_rooted_once(dataset):
    parents = joints.parents(dataset)
    assert len(parents) == joints.num_joints(dataset)
    assert parents.count(-1) == 1
    for j in range(len(parents)):  # every joint reaches the root without a cycle
        seen, k = set(), j
        while parents[k] >= 0:
            assert k not in seen
            seen.add(k)
            k = parents[k]
    assert len(joints.bones(dataset)) == len(parents) - 1


def test_nyu_y_direction_matches_the_table():
    uvd = np.array([[320.0, 100.0, 500.0]])  # above the image centre
    assert camera.NYU.uvd_to_xyz(uvd)[0, 1] > 0  # y up, as NYU's joint_xyz
    assert camera.ICVL.uvd_to_xyz(uvd)[0, 1] < 0  # y down
