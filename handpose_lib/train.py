"""Command line of the trainer (`handpose_lib.training`): one run of a profile's network.

Single process, or `torchrun --nproc_per_node N -m handpose_lib.train ...` for
DistributedDataParallel (`batch_size` is the global batch, split over the processes):

    python -m handpose_lib.train --profile cpu --model attention --run-dir runs/attention
    python -m handpose_lib.train --profile cpu --model locnet --run-dir runs/locnet
    python -m handpose_lib.train --run-dir runs/attention --resume
    python -m handpose_lib.train --profile smoke --model plain --run-dir /tmp/r --set train.lr=0.01
    python -m handpose_lib.train --profile cpu --run-dir runs/a --threads 2

`--threads N` sets torch's intra-op threads (default: torch's own choice, usually one per
core); with several runs or processes sharing a machine, give each a share of the cores.
`--profile` takes a rehearsal's name too (paper-rehearsal, paper-rehearsal-cpu).

Before any data work the log's first lines name the machine (torch, CUDA, GPUs or the CPU and
its matmul rate), and `training.preflight` refuses, in one line with the fix, a GPU profile
("paper", "paper_faithful" and their rehearsals) that would fall back to the CPU without
`--device cpu`, a /dev/shm too small for the loader workers, and a disk too small for the crop
cache.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch

from handpose_lib.profiles import DATA_CHOICES, get_profile, make_run_config
from handpose_lib.training import preflight
from handpose_lib.training.config import MODELS, RunConfig
from handpose_lib.training.data import centers_option
from handpose_lib.training.engine import TrainingDiverged, train

log = logging.getLogger(__name__)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--run-dir", required=True, help="where config, checkpoints, logs go")
    parser.add_argument(
        "--profile",
        default="cpu",
        help="a profile (profiles.PROFILES) or a rehearsal of one, e.g. paper-rehearsal-cpu",
    )
    parser.add_argument("--model", choices=MODELS, default="attention")
    parser.add_argument("--data", choices=DATA_CHOICES, default="synthetic")
    parser.add_argument("--config", help="a config.json to use instead of the profile")
    parser.add_argument(
        "--data-root", help="icvl / nyu dataset root (default: $HANDPOSE_ICVL_ROOT / _NYU_ROOT)"
    )
    parser.add_argument(
        "--centers",
        help="crop centres of the training frames: com, joints, a community centre file "
        "(x y z mm or 'invalid' per frame, e.g. center_train_refined.txt; invalid frames use "
        "the CoM), registry:v2v (V2V-PoseNet's registered centres of this split, fetched and "
        "verified: NYU train and test, ICVL test) or uvd:FILE (default: the profile's)",
    )
    parser.add_argument("--val-centers", help="crop centres of the validation frames, as --centers")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config fields, values as JSON (train.lr=0.01 data.val=null)",
    )
    parser.add_argument("--resume", action="store_true", help="continue run-dir's checkpoint")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's, one per core)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    try:
        get_profile(args.profile)
    except ValueError as err:
        parser.error(f"--profile: {err}")
    return args


def overrides_from(items: list[str]) -> dict[str, Any]:
    """["train.lr=0.01", "data.val=null"] -> {"train.lr": 0.01, "data.val": None}."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = _parse_value(value)
    return overrides


def data_overrides(
    config: RunConfig, root: str | None, centers: str | None, val_centers: str | None
) -> dict[str, Any]:
    """Config overrides of --data-root, --centers and --val-centers (paths made absolute)."""
    overrides: dict[str, Any] = {}
    specs = {"train": config.data.train, "val": config.data.val}
    if root is not None:
        files = [role for role, spec in specs.items() if spec and spec.kind in ("icvl", "nyu")]
        if not files:
            raise SystemExit("--data-root: the run reads no icvl / nyu files (use --data)")
        overrides.update({f"data.{role}.root": str(Path(root).resolve()) for role in files})
    for role, value in (("train", centers), ("val", val_centers)):
        if value is not None:
            if specs[role] is None:
                raise SystemExit(
                    f"--{role.replace('train', '')}centers: the run has no {role} data"
                )
            overrides[f"data.{role}.centers"] = centers_option(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    if args.config:
        config = RunConfig.load(args.config)
    elif args.resume and (run_dir / "config.json").is_file():
        config = RunConfig.load(run_dir)
    else:
        config = make_run_config(args.profile, args.model, args.data)
    overrides = data_overrides(config, args.data_root, args.centers, args.val_centers)
    overrides.update(overrides_from(args.set))
    if args.device:
        overrides["train.device"] = args.device
    if args.no_progress:
        overrides["train.progress"] = False
    config = config.with_overrides(overrides) if overrides else config
    if int(os.environ.get("RANK", "0")) == 0:
        for line in preflight.machine_lines():
            log.info("%s", line)
    # Before any data work: the device, /dev/shm and the crop cache's disk (PreflightError,
    # a ValueError: one line, exit status 2).
    preflight.check_run(config, run_dir)
    try:
        result = train(config, run_dir, resume=args.resume)
    except TrainingDiverged as err:
        print(f"training stopped: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"{config.name}: best {result.metric} {result.best_metric:.4g} at epoch "
            f"{result.best_epoch}; checkpoints in {run_dir}"
        )
    return 0


def cli(argv: list[str] | None = None) -> int:
    """`main` for the command line: a bad dataset folder, file or setting ends in one line
    naming it (exit status 2), not a traceback."""
    try:
        return main(argv)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(cli())
