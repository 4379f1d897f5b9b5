"""Recipe study (issue 8, section 2): the cpu-size attention model under one change at a time.

Every lever trains `python -m handpose_lib.train --profile cpu --model attention --set ...` at
the same step budget (the cpu profile's 768 steps unless `--steps`), in its own run folder under
`--out-dir` (keep it outside the checkout). Each run's last checkpoint is then evaluated on the
1596 rendered ICVL test poses with oracle crop centres (the joint centroid), so the table
measures the pose network, not the localization. Decoding variants need no retraining: they
re-decode the baseline run. The two constant-pose floors are rows of the same table.

    python benchmarks/recipe_study.py --out-dir /tmp/recipe                 # every lever
    python benchmarks/recipe_study.py --out-dir /tmp/r --levers baseline rot30 --steps 4

Resumable: a lever whose run folder holds a summary.json is not retrained. Writes
`recipe_study.csv` and `recipe_study.md` in --out-dir and prints the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from handpose_lib import floors, metrics
from handpose_lib.camera import ICVL
from handpose_lib.datasets.rendered_poses import RenderedPosesSource
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.profiles import get_profile, make_run_config
from handpose_lib.training.inference import load_model, run_inference

PROFILE_STEPS = 768  # the cpu profile: 6 epochs x 128 steps of batch 32 over 4096 frames

# Lever -> (config overrides as `--set` items, extra command-line arguments of the trainer).
LEVERS: dict[str, tuple[list[str], list[str]]] = {
    "baseline": ([], []),
    "det_sum": (['model.det_reduction="sum"'], []),
    "reg_weight_0.1": (["model.reg_weight=0.1"], []),
    "reg_weight_0.01": (["model.reg_weight=0.01"], []),
    # With the pixel-sum Eq. 2 (cpu profile) L_det outweighs L_reg; a heavier L_reg for depth.
    "reg_weight_10": (["model.reg_weight=10"], []),
    # The renderer already samples the hand's roll over +-90 deg; this is the crop rotation.
    "rotation_30": (["augment.rotation_deg=30"], []),
    "rotation_45": (["augment.rotation_deg=45"], []),
    "rotation_30+reg_weight_0.1": (["augment.rotation_deg=30", "model.reg_weight=0.1"], []),
    "zero_init_heads": (["model.zero_init_heads=true"], []),
    "cosine_warmup": (['train.lr_schedule="cosine"', "train.warmup_steps=50"], []),
    "heatmap_sigma_1": (["crop.heatmap_sigma=1.0"], []),
    "heatmap_sigma_3": (["crop.heatmap_sigma=3.0"], []),
    # Twice the distinct frames at the same 768 steps: 128 steps per epoch over 8192 frames.
    "train_frames_8192": (["data.train.num_frames=8192", "train.steps_per_epoch=128"], []),
    # Cached crops with 1.5x the cube of context, so a rotated crop keeps the whole hand.
    "context_1.5+rotation_45": (["crop.context=1.5", "augment.rotation_deg=45"], []),
    "threads_1": ([], ["--threads", "1"]),
}
# Evaluation only: re-decode the baseline run. (model field overrides)
DECODINGS: dict[str, dict[str, str]] = {
    "decode: last stack, gaussian (baseline)": {},
    "decode: first stack": {"decode_stack": "first"},
    "decode: mean of stacks": {"decode_stack": "mean"},
    "decode: integral (soft-argmax)": {"decode_method": "integral"},
    "decode: argmax": {"decode_method": "argmax"},
}
COLUMNS = [
    "change",
    "mean error (mm)",
    "2D error (px)",
    "2D error (mm)",
    "depth error (mm)",
    "train wall time (s)",
    "overrides",
]


def budget_overrides(steps: int) -> list[str]:
    """`--set` items giving `steps` optimizer steps in the profile's epoch structure."""
    if steps >= PROFILE_STEPS:
        return []
    epochs = min(get_profile("cpu").train.epochs, steps)
    return [f"train.epochs={epochs}", f"train.steps_per_epoch={max(1, steps // epochs)}"]


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value)
    return out


def train_cache_dir(out_dir: Path, overrides: list[str]) -> str:
    """One crop cache per distinct (crop config, training source): levers that only change
    the optimisation or the model share the rendered frames instead of rendering them again."""
    config = make_run_config("cpu", "attention").with_overrides(parse_set(overrides))
    key = json.dumps([config.crop.to_dict(), str(config.data.train)], sort_keys=True)
    return str(out_dir / "train_cache" / hashlib.sha256(key.encode()).hexdigest()[:12])


def train_lever(name: str, out_dir: Path, args: argparse.Namespace) -> tuple[Path, float]:
    """Train one lever (or find it finished); returns its run folder and training wall time."""
    sets, extra = LEVERS[name]
    run_dir = out_dir / "runs" / name
    summary = run_dir / "summary.json"
    timing = run_dir / "study_wall_time_s.txt"
    if summary.is_file():
        print(f"[{name}] finished run found, not retrained", flush=True)
        return run_dir, float(timing.read_text()) if timing.is_file() else math.nan
    common = [*budget_overrides(args.steps), "data.val=null"]
    if args.frames:
        common.append(f"data.train.num_frames={args.frames}")
    sets = common + sets
    sets.append(f'data.cache_dir="{train_cache_dir(out_dir, sets)}"')
    cmd = [sys.executable, "-m", "handpose_lib.train", "--run-dir", str(run_dir)]
    cmd += ["--profile", "cpu", "--model", "attention", "--no-progress", "--set", *sets]
    if not any(a == "--threads" for a in extra):
        cmd += ["--threads", str(args.threads)]
    cmd += extra
    if (run_dir / "checkpoint.pt").is_file():
        cmd.append("--resume")
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - started
    timing.write_text(f"{wall:.1f}\n")
    return run_dir, wall


def eval_dataset(crop_config, out_dir: Path, frames: int) -> HandPoseDataset:
    """The rendered ICVL test poses, cropped at the true joint centroid (oracle centres)."""
    source = RenderedPosesSource(seed=0)
    if frames:
        keep = np.linspace(0, len(source) - 1, frames).round().astype(int)
        source = RenderedPosesSource(seed=0, uvd=source.uvd[keep])
    key = hashlib.sha256(json.dumps([crop_config.to_dict(), frames]).encode()).hexdigest()[:12]
    cache = out_dir / "eval_cache" / key
    return HandPoseDataset(source, crop_config, centers="joints", cache_dir=cache)


def evaluate(model, dataset: HandPoseDataset) -> dict[str, float]:
    loader = DataLoader(dataset, batch_size=64)
    pred, gt = run_inference(model, loader, torch.device("cpu"))
    parts = metrics.error_parts(pred, gt, ICVL)
    return {
        "mean error (mm)": parts["3D error (mm)"],
        **{k: parts[k] for k in ("2D error (px)", "2D error (mm)", "depth error (mm)")},
    }


def floor_rows(dataset: HandPoseDataset) -> list[dict]:
    gt = np.stack([dataset.source[i].uvd for i in range(len(dataset.source))])
    train_uvd = floors.synthetic_train_uvd(get_profile("cpu").train_frames, seed=0)
    rows = []
    for floor in floors.constant_pose_floors(gt, "icvl", train_uvd=train_uvd):
        rows.append(
            {
                "change": floor.name,
                "mean error (mm)": floor.mean_error_mm,
                **{k: floor.parts[k] for k in ("2D error (px)", "2D error (mm)")},
                "depth error (mm)": floor.parts["depth error (mm)"],
            }
        )
    return rows


def write_table(rows: list[dict], out_dir: Path, note: str) -> pd.DataFrame:
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    table.to_csv(out_dir / "recipe_study.csv", index=False, float_format="%.3f")
    md = table.to_markdown(index=False, floatfmt=".2f")
    (out_dir / "recipe_study.md").write_text(f"{note}\n\n{md}\n")
    print(note)
    print(md)
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", required=True, type=Path, help="run folders and tables")
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--steps", type=int, default=PROFILE_STEPS, help="optimizer steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per training")
    parser.add_argument("--frames", type=int, default=0, help="training frames (0: profile)")
    parser.add_argument(
        "--eval-frames", type=int, default=0, help="test poses to evaluate (0: all 1596)"
    )
    parser.add_argument("--no-decodings", action="store_true", help="skip decoding variants")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = args.out_dir.resolve()
    if Path.cwd().resolve() in (out_dir, *out_dir.parents) and (Path.cwd() / ".git").exists():
        print(f"warning: {out_dir} is inside the checkout", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    rows: list[dict] = []
    datasets: dict[str, HandPoseDataset] = {}
    for name in args.levers:
        run_dir, wall = train_lever(name, out_dir, args)
        model, config = load_model(run_dir, "last", "cpu")
        crop = replace(config.crop, context=1.0)  # evaluation crops are never augmented
        key = json.dumps(crop.to_dict(), sort_keys=True)
        if key not in datasets:
            datasets[key] = eval_dataset(crop, out_dir, args.eval_frames)
        sets = " ".join(LEVERS[name][0] + LEVERS[name][1])
        decodings = DECODINGS if name == "baseline" and not args.no_decodings else {"": {}}
        for label, fields in decodings.items():
            model.config = replace(config.model, **fields)  # type: ignore[assignment,arg-type]
            row = {"change": label or name, "train wall time (s)": wall, "overrides": sets}
            row.update(evaluate(model, datasets[key]))
            rows.append(row)
            print(f"[{row['change']}] {row['mean error (mm)']:.2f} mm", flush=True)
    first = next(iter(datasets.values()))
    rows += floor_rows(first)
    note = (
        f"Recipe study: cpu-profile attention model, {min(args.steps, PROFILE_STEPS)} steps per "
        f"lever, synthetic training data, evaluated on {len(first)} rendered ICVL test poses "
        "with oracle (joint-centroid) crop centres; last checkpoint; one seed."
    )
    write_table(rows, out_dir, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
