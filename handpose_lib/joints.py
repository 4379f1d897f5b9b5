"""Joint layouts per dataset: order, names, and NYU's 14-of-36 evaluation subset.

The names follow the plotting convention of the awesome-hand-pose-estimation evaluation
code, so per-joint bar charts line up with the figures of earlier papers.
"""

from __future__ import annotations

ICVL_JOINT_NAMES: tuple[str, ...] = (
    "Palm",
    "Thumb.R", "Thumb.M", "Thumb.T",
    "Index.R", "Index.M", "Index.T",
    "Mid.R", "Mid.M", "Mid.T",
    "Ring.R", "Ring.M", "Ring.T",
    "Pinky.R", "Pinky.M", "Pinky.T",
)  # fmt: skip

# NYU labels 36 joints per Kinect; the community protocol keeps these 14 (camera 1 only).
NYU_EVAL_JOINT_IDS: tuple[int, ...] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)

NYU_JOINT_NAMES: tuple[str, ...] = (
    "Pinky.T", "Pinky.R",
    "Ring.T", "Ring.R",
    "Mid.T", "Mid.R",
    "Index.T", "Index.R",
    "Thumb.T", "Thumb.R2", "Thumb.R1",
    "Wrist2", "Wrist1", "Palm",
)  # fmt: skip

JOINT_NAMES: dict[str, tuple[str, ...]] = {"icvl": ICVL_JOINT_NAMES, "nyu": NYU_JOINT_NAMES}


def num_joints(dataset: str) -> int:
    """Number of evaluated joints: 16 for ICVL, 14 for NYU."""
    try:
        return len(JOINT_NAMES[dataset.lower()])
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(JOINT_NAMES)}"
        ) from None
