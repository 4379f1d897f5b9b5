"""Evaluate prediction files in the community uvd format against the test labels.

The same functions serve our models, the published methods, and the command line:

    python -m handpose_lib.evaluate icvl preds.txt other.txt --names Ours Other
    python -m handpose_lib.evaluate nyu preds.txt --json
    python -m handpose_lib.evaluate nyu preds.txt --by-subset    # + NYU subject 1 / 2 rows

A file covering only part of the test set (e.g. ICVL test_seq_1, 702 frames) is evaluated
on that subset, and the output says which subset it was. `--by-subset` adds one row per test
subset (ICVL test_seq_1 / test_seq_2, NYU subject_1 / subject_2, as in `conventions`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from handpose_lib import conventions, metrics, published, uvd_format
from handpose_lib.camera import Camera, camera_for
from handpose_lib.joints import JOINT_NAMES, num_joints


@dataclass(frozen=True)
class MethodResult:
    """Errors of one method on one dataset. `errors_mm` is (N, J)."""

    name: str
    file: str
    dataset: str
    subset: str  # "all", or the test subset the file covers
    errors_mm: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.errors_mm.shape[0])

    @property
    def mean_error_mm(self) -> float:
        return metrics.mean_error_mm(self.errors_mm)

    @property
    def per_joint_mm(self) -> np.ndarray:
        return metrics.per_joint_mean_mm(self.errors_mm)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "file": self.file,
            "frames": self.frames,
            "subset": self.subset,
            "mean_error_mm": self.mean_error_mm,
            "per_joint_mm": [float(x) for x in self.per_joint_mm],
        }


def evaluate_uvd(
    pred_uvd: np.ndarray,
    gt_uvd: np.ndarray,
    dataset: str,
    name: str,
    file: str = "",
    subset: str = "all",
    camera: Camera | None = None,
) -> MethodResult:
    """Errors of predictions (N, J, 3) against ground truth (N, J, 3), both uvd."""
    camera = camera or camera_for(dataset)
    errors = metrics.uvd_errors_mm(pred_uvd, gt_uvd, camera)
    return MethodResult(name=name, file=file, dataset=dataset, subset=subset, errors_mm=errors)


def evaluate_file(
    path: str | os.PathLike,
    dataset: str,
    gt_uvd: np.ndarray,
    name: str | None = None,
    camera: Camera | None = None,
) -> MethodResult:
    """Evaluate one prediction file; `gt_uvd` is the whole test set (N, J, 3).

    A file with fewer frames than the test set must match a known subset in size; it is
    compared with that slice of the ground truth. A file of the full size is compared frame
    by frame. With a custom ground truth that is not the full test set, sizes must match.
    """
    path = Path(path)
    pred_uvd = uvd_format.read_uvd(path, num_joints(dataset))
    if len(pred_uvd) == len(gt_uvd):
        subset, gt_part = "all", gt_uvd
    elif len(gt_uvd) == published.test_frame_count(dataset):
        subset = published.subset_for_frame_count(dataset, len(pred_uvd), path)
        start, stop = conventions.test_subsets(dataset)[subset]
        gt_part = gt_uvd[start:stop]
    else:
        raise uvd_format.FormatError(
            f"{path}: {len(pred_uvd)} frames, the ground truth has {len(gt_uvd)}"
        )
    return evaluate_uvd(
        pred_uvd, gt_part, dataset, name or path.stem, str(path), subset, camera=camera
    )


OURS_NAME, OURS_REHEARSAL_NAME = "Ours (this package)", "Ours (rehearsal)"


def ours_result(
    dataset: str,
    predictions: str | os.PathLike,
    labels: str | os.PathLike = "",
    note: str = "",
    local_dir: str | os.PathLike | None = None,
) -> MethodResult:
    """Table 1's row of this package's model: `predictions` against `labels` (a uvd file of
    the same frames) or, without them, the published test labels. A `note` (a rehearsal's)
    names the row "Ours (rehearsal)": a few frames after a few steps, not a result."""
    if labels:
        gt_uvd = uvd_format.read_uvd(labels, num_joints(dataset))
    else:
        gt_uvd = published.load_labels(dataset, local_dir=local_dir)
    name = OURS_REHEARSAL_NAME if note else OURS_NAME
    return evaluate_file(predictions, dataset, gt_uvd, name=name)


def subset_results(result: MethodResult) -> list[MethodResult]:
    """`result` followed by its results on each test subset it covers, in label order.

    A result on the whole published test set gives "all" plus one result per subset (ICVL
    test_seq_1 / test_seq_2, NYU subject_1 / subject_2); a result on one subset, or on a test
    set other than the published one (custom ground truth), gives only itself.
    """
    spans = conventions.test_subsets(result.dataset)
    if result.subset != "all" or result.frames != spans["all"][1]:
        return [result]
    parts = [
        MethodResult(
            name=result.name,
            file=result.file,
            dataset=result.dataset,
            subset=name,
            errors_mm=result.errors_mm[start:stop],
        )
        for name, (start, stop) in spans.items()
        if name != "all"
    ]
    return [result, *parts]


def evaluate_published(
    dataset: str,
    methods: list[str] | None = None,
    local_dir: str | os.PathLike | None = None,
    camera: Camera | None = None,
) -> list[MethodResult]:
    """Evaluate published predictions (all of `dataset`, or the named methods, in order)."""
    gt_uvd = published.load_labels(dataset, local_dir=local_dir)
    entries = (
        published.prediction_entries(dataset)
        if methods is None
        else [published.find_prediction(dataset, m) for m in methods]
    )
    results = []
    for entry in entries:
        path = published.fetch(entry, local_dir=local_dir)
        result = evaluate_file(path, dataset, gt_uvd, name=entry.method, camera=camera)
        if result.subset != entry.subset:
            raise uvd_format.FormatError(
                f"{path}: covers {result.subset}, the registry says {entry.subset}"
            )
        results.append(result)
    return results


def format_table(results: list[MethodResult], dataset: str) -> str:
    """A readable text table: one row per result, mean and per-joint errors (mm)."""
    names = JOINT_NAMES[dataset]
    rows = []
    for r in results:
        row = {
            "method": r.name,
            "frames": r.frames,
            "subset": r.subset,
            "mean (mm)": round(r.mean_error_mm, 3),
        }
        row.update({j: round(float(e), 2) for j, e in zip(names, r.per_joint_mm, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.evaluate",
        description="Mean 3D joint error (mm) of prediction files in the community uvd format.",
    )
    parser.add_argument("dataset", choices=["icvl", "nyu"])
    parser.add_argument("pred_files", nargs="+", metavar="PRED_FILE")
    parser.add_argument("--gt", help="ground-truth file (default: the published test labels)")
    parser.add_argument("--names", nargs="+", help="display names, one per PRED_FILE")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--by-subset",
        action="store_true",
        help="also report each test subset (ICVL test_seq_1/2, NYU subject_1/2)",
    )
    parser.add_argument(
        "--published-dir",
        help=f"local copy of the published files (default: ${published.ENV_LOCAL_DIR}, "
        "else download with checksums)",
    )
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.pred_files):
        parser.error(f"--names has {len(args.names)} names for {len(args.pred_files)} files")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    names = args.names or [None] * len(args.pred_files)
    try:
        if args.gt:
            gt_uvd = uvd_format.read_uvd(args.gt, num_joints(args.dataset))
        else:
            gt_uvd = published.load_labels(args.dataset, local_dir=args.published_dir)
        results = [
            evaluate_file(path, args.dataset, gt_uvd, name=name)
            for path, name in zip(args.pred_files, names, strict=True)
        ]
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        methods = []
        for r in results:
            entry = r.to_dict()
            if args.by_subset:
                entry["subsets"] = [s.to_dict() for s in subset_results(r)[1:]]
            methods.append(entry)
        print(json.dumps({"dataset": args.dataset, "methods": methods}))
    else:
        rows = [s for r in results for s in subset_results(r)] if args.by_subset else results
        print(format_table(rows, args.dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
