"""Dataset conventions in one versioned table: every number the package assumes about ICVL and
NYU, each with the source it was taken from.

Nothing else in the package spells these numbers: `camera.py`, `joints.py`, the published
registry, the dataset readers and the crop configuration read them from here (a test greps the
package for stray copies). Change a value only together with `VERSION` and its source.

Sources cited below:
- DeepPrior++: github.com/moberweger/deep-prior-pp, `src/data/importers.py` (`ICVLImporter`,
  `NYUImporter`: intrinsics, `default_cubes`, `restrictedJointsEval`, `jointImgTo3D`);
  issue #4 of that repository (M. Oberweger: "The first 2440 frames are for 'test_1', the
  remaining frames are for 'test_2'").
- V2V-PoseNet: github.com/mks0601/V2V-PoseNet_RELEASE, `src/data/ICVL/data.lua` and
  `src/data/NYU/data.lua` (frame counts, pixel2world, depth ranges, `eval_joint`).
- awesome-hand-pose-estimation: github.com/xinghaochen/awesome-hand-pose-estimation,
  `evaluation/` (published labels; ICVL intrinsics 240.99 / 240.96 of its scripts).
- Tompson et al., "Real-time continuous pose recovery of human hands using convolutional
  networks", ToG 2014 (NYU: three Kinects, 36 labelled joints, 72,757 / 8,252 frames).
- Tang et al., "Latent regression forest", CVPR 2014 (ICVL: 320x240 depth, 16 joints).

NYU cube per test subject. DeepPrior++ crops NYU with a 300 mm cube for training and test
subject 1 but 250 mm for subject 2 (`NYUImporter.default_cubes`: 'test_1': 300, 'test_2':
250), adjusting the crop to the second subject's smaller hand. This package uses ONE cube per
dataset (NYU: 300 mm for both subjects) by default: choosing the cube by test subject uses
knowledge of who is in the frame that a deployed system does not have, and neither the paper
nor V2V-PoseNet (one 250 mm cube for all NYU frames) does it. DeepPrior++'s per-subject cubes
are kept in the table (`cube_mm(dataset, subset, per_subject=True)`) for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Bump when any value below changes (results computed with another version are not comparable).
VERSION = "1"

DATASETS: tuple[str, ...] = ("icvl", "nyu")


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a depth sensor; `y_up`: camera-space y grows upward."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    y_up: bool = False


@dataclass(frozen=True)
class Entry:
    """One convention: its value and where it comes from."""

    value: Any
    source: str


_DEEPPRIOR_IMPORTERS = "DeepPrior++ src/data/importers.py"
_V2V_DATA = "V2V-PoseNet src/data/{}/data.lua"

# The table. Keys per dataset:
#   intrinsics           the camera every metric and crop uses
#   intrinsics_alt       alternative intrinsics quoted elsewhere (comparison only)
#   cube_mm              side of the crop cube around the hand centre
#   subset_cube_mm       per test subset cube of DeepPrior++ (not used by default, see above)
#   split_frames         frames per split of the distribution
#   test_subsets         [start, stop) frame ranges of the test subsets, in label-file order
#   eval_joint_ids       joints of the labelled set that the community protocol evaluates
#   labelled_joints      joints per frame in the distributed labels
#   kinects              sensors per frame in the distributed labels (NYU)
#   palm_joint           evaluated joint that DeepPrior++'s centre refinement locates
#   depth_range_mm       depth band kept when segmenting the hand (V2V-PoseNet); informative
#   no_reading_mm        value of a pixel without a depth reading
TABLE: dict[str, dict[str, Entry]] = {
    "icvl": {
        "intrinsics": Entry(
            Intrinsics(fx=241.42, fy=241.42, cx=160.0, cy=120.0, width=320, height=240),
            f"{_DEEPPRIOR_IMPORTERS} ICVLImporter (241.42, 241.42, 160, 120); "
            f"{_V2V_DATA.format('ICVL')} (fx = fy = 241.42, y down). Reproduces Table 1 to "
            "three decimals (notebook 05).",
        ),
        "intrinsics_alt": Entry(
            Intrinsics(fx=240.99, fy=240.96, cx=160.0, cy=120.0, width=320, height=240),
            "awesome-hand-pose-estimation evaluation scripts; gives ICVL errors ~0.01 mm higher",
        ),
        "cube_mm": Entry(250.0, f"{_DEEPPRIOR_IMPORTERS} ICVLImporter.default_cubes (250 mm)"),
        "subset_cube_mm": Entry(
            {"test_seq_1": 250.0, "test_seq_2": 250.0},
            f"{_DEEPPRIOR_IMPORTERS} ICVLImporter.default_cubes",
        ),
        "split_frames": Entry(
            {"train": 331006, "test": 1596},
            f"{_V2V_DATA.format('ICVL')} (trainSz, testSz); Training/labels.txt with the "
            "rotated copies",
        ),
        "test_subsets": Entry(
            {"test_seq_1": (0, 702), "test_seq_2": (702, 1596)},
            "ICVL Testing/test_seq_1.txt (702 lines) then test_seq_2.txt (894 lines), the order "
            f"of the published labels (awesome-hand-pose-estimation icvl_test_list.txt; "
            f"{_V2V_DATA.format('ICVL')} reads them in this order)",
        ),
        "eval_joint_ids": Entry(tuple(range(16)), "all 16 ICVL joints (Tang et al. 2014)"),
        "labelled_joints": Entry(16, "ICVL label files: 16 joints as u v d"),
        "kinects": Entry(1, "ICVL: one Intel Creative sensor"),
        "palm_joint": Entry(
            0,
            f"{_DEEPPRIOR_IMPORTERS} ICVLImporter.crop_joint_idx: the joint DeepPrior++'s centre "
            "refinement is trained to locate (V2V-PoseNet's refined centre files lie 44 mm "
            "from it and 13 mm from the 16-joint centroid: center_files)",
        ),
        "depth_range_mm": Entry((100.0, 600.0), f"{_V2V_DATA.format('ICVL')} minDepth, maxDepth"),
        "no_reading_mm": Entry(
            (0.0, 32001.0), f"{_DEEPPRIOR_IMPORTERS} ICVLImporter.getDepthMapNV (32001) and 0"
        ),
    },
    "nyu": {
        "intrinsics": Entry(
            Intrinsics(fx=588.03, fy=587.07, cx=320.0, cy=240.0, width=640, height=480, y_up=True),
            f"{_DEEPPRIOR_IMPORTERS} NYUImporter (588.03, 587.07, 320, 240; jointImgTo3D uses "
            f"uy - v: y up, as NYU's joint_xyz); {_V2V_DATA.format('NYU')} (588.036865, "
            "587.075073, imgHeight/2 - y)",
        ),
        "cube_mm": Entry(
            300.0, f"{_DEEPPRIOR_IMPORTERS} NYUImporter.default_cubes['train'/'test']"
        ),
        "subset_cube_mm": Entry(
            {"subject_1": 300.0, "subject_2": 250.0},
            f"{_DEEPPRIOR_IMPORTERS} NYUImporter.default_cubes['test_1'] = 300, ['test_2'] = 250",
        ),
        "split_frames": Entry(
            {"train": 72757, "test": 8252},
            f"Tompson et al. 2014; {_V2V_DATA.format('NYU')} (trainSz, testSz)",
        ),
        "test_subsets": Entry(
            {"subject_1": (0, 2440), "subject_2": (2440, 8252)},
            "deep-prior-pp issue #4 (M. Oberweger): test frames 1-2440 are subject 1 "
            "('test_1'), the rest subject 2 ('test_2')",
        ),
        "eval_joint_ids": Entry(
            (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32),
            f"{_DEEPPRIOR_IMPORTERS} NYUImporter.restrictedJointsEval; "
            f"{_V2V_DATA.format('NYU')} eval_joint (1-based)",
        ),
        "labelled_joints": Entry(36, "NYU joint_data.mat: joint_uvd / joint_xyz (3, N, 36, 3)"),
        "kinects": Entry(3, "NYU joint_data.mat: three Kinects, the first frontal"),
        "palm_joint": Entry(
            13,
            f"{_DEEPPRIOR_IMPORTERS} NYUImporter.crop_joint_idx (13 of the 14 evaluated joints = "
            "label 32, the palm): the target of DeepPrior++'s centre refinement",
        ),
        "depth_range_mm": Entry((300.0, 1200.0), f"{_V2V_DATA.format('NYU')} minDepth, maxDepth"),
        "no_reading_mm": Entry((0.0,), "NYU depth PNGs: 0 where the Kinect has no reading"),
    },
}


def entry(dataset: str, key: str) -> Entry:
    """The table entry `key` of `dataset`; errors name what exists."""
    conventions = TABLE.get(str(dataset).lower())
    if conventions is None:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {list(DATASETS)}")
    if key not in conventions:
        raise KeyError(f"no convention {key!r} for {dataset}; known: {sorted(conventions)}")
    return conventions[key]


def value(dataset: str, key: str) -> Any:
    return entry(dataset, key).value


def source(dataset: str, key: str) -> str:
    return entry(dataset, key).source


def intrinsics(dataset: str, alternative: bool = False) -> Intrinsics:
    """The intrinsics of `dataset` (ICVL: `alternative=True` gives 240.99 / 240.96)."""
    return value(dataset, "intrinsics_alt" if alternative else "intrinsics")


def test_subsets(dataset: str) -> dict[str, tuple[int, int]]:
    """[start, stop) of "all" and of each test subset, in the order of the published labels."""
    parts = dict(value(dataset, "test_subsets"))
    return {"all": (0, value(dataset, "split_frames")["test"]), **parts}


def split_frames(dataset: str, split: str) -> int:
    """Frames of a split ("train", "test" or a test subset) in the distribution."""
    counts = value(dataset, "split_frames")
    if split in counts:
        return int(counts[split])
    subsets = value(dataset, "test_subsets")
    if split in subsets:
        start, stop = subsets[split]
        return stop - start
    raise KeyError(f"no split {split!r} for {dataset}; known: {sorted({*counts, *subsets})}")


def cube_mm(dataset: str, subset: str | None = None, per_subject: bool = False) -> float:
    """Side of the crop cube (mm). One per dataset unless `per_subject` asks for DeepPrior++'s
    per-test-subset cube of `subset` (see the module docstring for why that is not default)."""
    if per_subject and subset is not None and subset != "all":
        per_subset = value(dataset, "subset_cube_mm")
        if subset not in per_subset:
            raise KeyError(f"no cube for {dataset} subset {subset!r}; known: {sorted(per_subset)}")
        return float(per_subset[subset])
    return float(value(dataset, "cube_mm"))


def subset_of_frame(dataset: str, index: int) -> str:
    """Name of the test subset that holds test frame `index` (0-based, label-file order)."""
    for name, (start, stop) in value(dataset, "test_subsets").items():
        if start <= index < stop:
            return name
    raise IndexError(f"{dataset} test frame {index} is outside {test_subsets(dataset)['all']}")


def rows() -> list[dict[str, str]]:
    """The whole table as rows (dataset, key, value, source) for notebooks and docs."""
    return [
        {"dataset": dataset, "key": key, "value": repr(e.value), "source": e.source}
        for dataset, conventions in TABLE.items()
        for key, e in conventions.items()
    ]
