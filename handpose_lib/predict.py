"""Command line: a trained run's predictions in the community formats, and their error.

    python -m handpose_lib.predict RUN_DIR preds.txt            # the run's validation data
    python -m handpose_lib.predict RUN_DIR preds.txt --source rendered --which last
    python -m handpose_lib.predict RUN_DIR preds.txt --source icvl --root /data/ICVL \\
        --centers /data/ICVL/center_test_refined.txt
    python -m handpose_lib.predict LOCNET_RUN centers.txt --source icvl --format centers

Pose runs write (N, J, 3) joints in the community uvd format. LocNet runs write their refined
centres: `--format uvd` as one joint per frame (what a pose run's `SourceSpec.centers`
"uvd:PATH" reads), `--format centers` as a community centre file (`x y z` mm per frame, the
format of V2V-PoseNet's `center_*_refined.txt`, read by "xyz:PATH" and `--centers`).

`--centers` crops the predicted frames at "com", "joints", a community centre file (its
`invalid` frames at the CoM; the output counts them) or "uvd:FILE". An ICVL / NYU test split
is checked against the published test set: the output says whether `python -m
handpose_lib.evaluate DATASET OUT` (the published labels) applies, or `--gt` with the split's
own labels (`--labels-out`); `--published` makes a mismatch an error. The code is
`handpose_lib.training.inference`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from handpose_lib import center_files, uvd_format
from handpose_lib.camera import camera_for
from handpose_lib.datasets.frame import FrameSource
from handpose_lib.datasets.published_split import check_published_source
from handpose_lib.evaluate import MethodResult, evaluate_uvd
from handpose_lib.models import PoseNetConfig
from handpose_lib.training.config import RunConfig, SourceSpec
from handpose_lib.training.data import EvenSubset, build_dataset, centers_option, with_run_cache
from handpose_lib.training.inference import load_model, run_inference, write_predictions

FORMATS = ("uvd", "centers")


class DatasetMismatch(ValueError):
    """A run is asked to predict data of another dataset (camera, cube, joints)."""


@dataclass(frozen=True)
class Prediction:
    """What `predict_split` wrote. result: errors against the frames' own labels; published:
    True / False when an ICVL / NYU test split was checked against the published test set
    (None: not checked); notes: what the output says about centres and labels."""

    result: MethodResult
    out: Path
    published: bool | None
    notes: tuple[str, ...]


def check_dataset(config: RunConfig, spec: SourceSpec, run_dir: str | os.PathLike) -> None:
    """Raise DatasetMismatch naming the run's config and the data unless the run was trained
    on the dataset (camera, cube and joints) of `spec`."""
    trained = config.data.train.dataset
    if spec.dataset != trained:
        model = config.model
        joints = f", {model.num_joints} joints" if isinstance(model, PoseNetConfig) else ""
        data = f"{spec.kind} {spec.split}" + (f" at {spec.root}" if spec.root else "")
        raise DatasetMismatch(
            f"{Path(run_dir) / 'config.json'}: a {config.name} run trained on {trained} data "
            f"({config.data.train.kind}{joints}) cannot predict {spec.dataset} frames ({data}): "
            f"camera, crop cube and joints differ; train a run on {spec.dataset} data"
        )


def predict_split(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    spec: SourceSpec | None = None,
    which: str = "last",
    device: str = "auto",
    fmt: str = "uvd",
    labels_out: str | os.PathLike | None = None,
    require_published: bool = False,
    published_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    report=print,
) -> Prediction:
    """Predict `spec` (default: the run's validation data) with a trained run and write the
    predictions to `out` in `fmt` ("uvd"; "centers" for LocNet runs: a community centre
    file). `labels_out` also writes the frames' labels (uvd) for `evaluate --gt`.

    A whole ICVL / NYU test split is checked against the published test set; with
    `require_published` a mismatch raises FormatError naming the folder."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    model, config = load_model(run_dir, which, device)
    spec = spec or config.data.val
    if spec is None:
        raise ValueError(f"{run_dir}: the run has no validation data; pass a source")
    check_dataset(config, spec, run_dir)
    if fmt == "centers" and config.task != "locnet":
        raise ValueError(
            f"{run_dir}: --format centers writes hand centres, a {config.name} run predicts "
            "joints; use a localization (locnet) run"
        )
    notes: list[str] = []
    dataset = build_dataset(with_run_cache(config, run_dir), "val", spec, report=notes.append)
    published = _published_check(dataset.source, spec, require_published, published_dir, notes)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=config.train.num_workers)
    pred, gt = run_inference(model, loader, next(model.parameters()).device)
    out = Path(out)
    if fmt == "centers":
        center_files.write_uvd_centers(out, pred, camera_for(spec.dataset))
    else:
        write_predictions(out, pred)
    if labels_out is not None:
        uvd_format.write_uvd(labels_out, dataset_labels(dataset))
        notes.append(f"labels of the {len(dataset)} frames -> {labels_out} (evaluate --gt)")
    for note in notes:
        report(note)
    if pred.ndim == 2:
        pred, gt = pred[:, None], gt[:, None]
    name = f"{config.name} ({Path(run_dir).name})"
    result = evaluate_uvd(pred, gt, spec.dataset, name=name, file=str(out))
    return Prediction(result, out, published, tuple(notes))


def dataset_labels(dataset) -> np.ndarray:
    """(N, J, 3) uvd labels of a HandPoseDataset's frames, in order (read from the label
    files where the source holds them, else from each frame)."""
    source = dataset.source
    inner = source.source if isinstance(source, EvenSubset) else source
    uvd = getattr(inner, "uvd", None)
    if uvd is not None:
        uvd = np.asarray(uvd)
        return uvd[source.indices] if isinstance(source, EvenSubset) else uvd
    return np.stack([source[i].uvd for i in range(len(source))])


def _published_check(
    source: FrameSource,
    spec: SourceSpec,
    require: bool,
    local_dir: str | os.PathLike | None,
    notes: list[str],
) -> bool | None:
    """Is a whole ICVL / NYU test split the published test set? Says so in `notes`."""
    whole_test = spec.kind in ("icvl", "nyu") and spec.split == "test" and not spec.num_frames
    if not whole_test:
        if require:
            raise uvd_format.FormatError(
                f"{spec.kind} {spec.split} ({spec.num_frames or 'all'} frames) is not a whole "
                "ICVL / NYU test split; only that can stand for the published test set"
            )
        if spec.kind in ("icvl", "nyu"):
            notes.append(
                f"{spec.kind.upper()} {spec.split}"
                + (f", {len(source)} of its frames" if isinstance(source, EvenSubset) else "")
                + ": not the published test set; evaluate against these frames' own labels "
                "(--labels-out, then evaluate --gt)"
            )
        return None
    try:
        check_published_source(source, local_dir)
    except uvd_format.FormatError as err:
        if require:
            raise
        notes.append(
            f"not the published {spec.kind.upper()} test set: {err}. --labels-out FILE writes "
            f"its labels for python -m handpose_lib.evaluate {spec.kind} OUT --gt FILE"
        )
        return False
    except OSError as err:  # published labels unavailable (offline, nothing cached)
        if require:
            raise
        notes.append(f"could not check against the published test set: {err}")
        return None
    notes.append(
        f"the published {spec.kind.upper()} test set ({len(source)} frames, published order): "
        f"python -m handpose_lib.evaluate {spec.kind} OUT compares with Table 1"
    )
    return True


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.predict",
        description="Write a trained run's predictions in the community formats.",
    )
    parser.add_argument("run_dir", help="run directory written by handpose_lib.train")
    parser.add_argument("out", help="prediction file to write")
    parser.add_argument("--which", choices=("best", "last"), default="last")
    parser.add_argument(
        "--source",
        choices=("synthetic", "rendered", "icvl", "nyu"),
        help="data to predict (default: the run's validation data)",
    )
    parser.add_argument("--split", default="test", help="icvl / nyu split")
    parser.add_argument("--num-frames", type=int, default=0, help="0 = all (synthetic: >0)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic / rendered seed")
    parser.add_argument("--root", help="icvl / nyu root (default: the environment variable)")
    parser.add_argument(
        "--centers",
        help="crop centres of the predicted frames: com, joints, a community centre file "
        "(x y z mm or 'invalid' per frame; invalid frames use the CoM), registry:v2v "
        "(V2V-PoseNet's registered centres of the split) or uvd:FILE "
        "(default: com for --source, else the run's validation centres)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="uvd",
        help="uvd: community uvd file; centers: community centre file (LocNet runs)",
    )
    parser.add_argument("--labels-out", help="also write the frames' labels (for evaluate --gt)")
    parser.add_argument(
        "--published",
        action="store_true",
        help="require the split to be the published test set (else an error naming it)",
    )
    parser.add_argument("--published-dir", help="local copy of the published files")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's, one per core)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    try:
        spec = None
        centers = None if args.centers is None else centers_option(args.centers)
        if args.source is not None:
            spec = SourceSpec(
                kind=args.source,
                num_frames=args.num_frames,
                seed=args.seed,
                root=args.root,
                split=args.split,
                centers=centers or "com",
            )
        elif centers is not None:
            val = RunConfig.load(args.run_dir).data.val
            if val is None:
                raise ValueError(f"{args.run_dir}: the run has no validation data; pass --source")
            spec = replace(val, centers=centers)
        found = predict_split(
            args.run_dir,
            args.out,
            spec,
            which=args.which,
            device=args.device,
            fmt=args.format,
            labels_out=args.labels_out,
            require_published=args.published,
            published_dir=args.published_dir,
        )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = found.result
    print(
        f"wrote {found.out}: {result.frames} frames, mean error {result.mean_error_mm:.3f} mm "
        "(against the frames' own labels)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
