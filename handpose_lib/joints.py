"""Joint layouts per dataset: order, names, the hand skeleton, NYU's 14-of-36 evaluation subset.

The names follow the plotting convention of the awesome-hand-pose-estimation evaluation
code, so per-joint bar charts line up with the figures of earlier papers.
"""

from __future__ import annotations

from handpose_lib import conventions

ICVL_JOINT_NAMES: tuple[str, ...] = (
    "Palm",
    "Thumb.R", "Thumb.M", "Thumb.T",
    "Index.R", "Index.M", "Index.T",
    "Mid.R", "Mid.M", "Mid.T",
    "Ring.R", "Ring.M", "Ring.T",
    "Pinky.R", "Pinky.M", "Pinky.T",
)  # fmt: skip

# NYU labels 36 joints per Kinect; the community protocol keeps 14 of them (camera 1 only).
NYU_EVAL_JOINT_IDS: tuple[int, ...] = conventions.value("nyu", "eval_joint_ids")

NYU_JOINT_NAMES: tuple[str, ...] = (
    "Pinky.T", "Pinky.R",
    "Ring.T", "Ring.R",
    "Mid.T", "Mid.R",
    "Index.T", "Index.R",
    "Thumb.T", "Thumb.R2", "Thumb.R1",
    "Wrist2", "Wrist1", "Palm",
)  # fmt: skip

JOINT_NAMES: dict[str, tuple[str, ...]] = {"icvl": ICVL_JOINT_NAMES, "nyu": NYU_JOINT_NAMES}

# The hand skeleton: parent of every joint in the joint order above (-1 for the root). ICVL's
# root is the Palm and each finger runs root -> mid -> tip; NYU's root is its Palm (last) and
# each finger hangs tip -> root -> Palm, the thumb tip -> R2 -> R1 -> Palm, both wrist points
# on the Palm. The synthetic renderer builds its capsules along ICVL_PARENT.
ICVL_PARENT: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
NYU_PARENT: tuple[int, ...] = (1, 13, 3, 13, 5, 13, 7, 13, 9, 10, 13, 13, 13, -1)
PARENTS: dict[str, tuple[int, ...]] = {"icvl": ICVL_PARENT, "nyu": NYU_PARENT}


def parents(dataset: str) -> tuple[int, ...]:
    """Parent joint of each joint of `dataset` (-1 for the root): the skeleton's bones."""
    try:
        return PARENTS[dataset.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(PARENTS)}"
        ) from None


def bones(dataset: str) -> list[tuple[int, int]]:
    """(parent, child) joint index pairs of the skeleton of `dataset`."""
    return [(p, j) for j, p in enumerate(parents(dataset)) if p >= 0]


def num_joints(dataset: str) -> int:
    """Number of evaluated joints: 16 for ICVL, 14 for NYU."""
    try:
        return len(JOINT_NAMES[dataset.lower()])
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(JOINT_NAMES)}"
        ) from None
