"""The learning-curve figure and table of `paper_plateau.py` runs (issue 16, section 1).

    python benchmarks/paper_plateau.py --report RUN_ROOT [RUN_ROOT ...] --out figures/paper_recipe

reads RUN_ROOT/<profile>/history.csv and config.json of every run and writes PATH.png (last-stack
L_det / all-zero, mean heatmap peak and validation 2D error against step, the plateau, the
target and the oracle floor marked) and PATH.md (one row per run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

PLATEAU, TARGET = 0.95, 0.6
SMOOTH = 10  # steps in the running mean of the per-batch ratio and peak


def load_runs(roots: list[Path]) -> dict[str, pd.DataFrame]:
    """label -> history of every run folder (one with history.csv) under the roots."""
    runs: dict[str, pd.DataFrame] = {}
    for root in roots:
        for history in sorted(root.glob("*/history.csv")):
            config = json.loads((history.parent / "config.json").read_text())
            model = config["model"]
            train = config["train"]
            label = (
                f"{config['profile']}: {train['optimizer']} {train['lr']:g}, Eq. 2 "
                f"{model['det_reduction']}, sigma {config['crop']['heatmap_sigma']:g}, "
                f"{model['channels']} ch, {model['input_size']} px"
            )
            runs[label] = pd.read_csv(history)
    return runs


def summary_row(label: str, history: pd.DataFrame) -> dict[str, object]:
    steps = history[history["step"] > 0]
    ratio = steps["det_last/zero"].rolling(SMOOTH, min_periods=1).mean()
    val = history.dropna(subset=["val_2d_mm"]) if "val_2d_mm" in history else history.iloc[:0]
    floor = float(history["floor_2d_mm"].iloc[0]) if "floor_2d_mm" in history else np.nan
    diverged = "diverged" in history and history["diverged"].notna().any()
    reached = steps["step"][ratio.to_numpy() <= TARGET]
    below = val["step"][val["val_2d_mm"] < floor] if len(val) else pd.Series([], dtype=int)
    return {
        "run": label,
        "steps": int(steps["step"].max()) if len(steps) else 0,
        f"L_det ratio (mean of last {SMOOTH})": round(float(ratio.iloc[-1]), 3)
        if len(ratio)
        else np.nan,
        "peak": round(float(steps["peak"].tail(SMOOTH).mean()), 3) if len(steps) else np.nan,
        "first step ratio <= 0.6": int(reached.iloc[0]) if len(reached) else "-",
        "val 2D error (mm), last": round(float(val["val_2d_mm"].iloc[-1]), 2)
        if len(val)
        else np.nan,
        "best val 2D (mm)": round(float(val["val_2d_mm"].min()), 2) if len(val) else np.nan,
        "oracle floor 2D (mm)": round(floor, 2),
        "first step below the floor": int(below.iloc[0]) if len(below) else "-",
        "diverged at step": int(history["step"].iloc[-1]) if diverged else "-",
        "s per step": round(float(steps["time_s"].diff().median()), 2)
        if len(steps) > 2
        else np.nan,
    }


def report(roots: list[Path], out: Path | None) -> pd.DataFrame:
    import matplotlib  # noqa: PLC0415 (plotting only)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    runs = load_runs(roots)
    if not runs:
        raise SystemExit(f"no runs (<profile>/history.csv) under {[str(r) for r in roots]}")
    table = pd.DataFrame([summary_row(label, h) for label, h in runs.items()])
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    for (label, history), color in zip(runs.items(), [f"C{i}" for i in range(10)], strict=False):
        steps = history[history["step"] > 0]
        ok = steps.dropna(subset=["det_last/zero"])
        smooth = ok["det_last/zero"].rolling(SMOOTH, min_periods=1).mean()
        axes[0].plot(ok["step"], smooth.clip(upper=3), color=color, label=label)
        peak = ok["peak"].rolling(SMOOTH, min_periods=1).mean().clip(upper=1.5)
        axes[1].plot(ok["step"], peak, color=color)
        if "val_2d_mm" in history and "floor_2d_mm" in history:
            val = history.dropna(subset=["val_2d_mm"])
            axes[2].plot(val["step"], val["val_2d_mm"], "o-", color=color, ms=3)
            axes[2].axhline(history["floor_2d_mm"].iloc[0], color=color, ls=":", lw=1)
    axes[0].axhline(1.0, color="grey", lw=1)
    axes[0].axhline(PLATEAU, color="grey", ls="--", lw=1, label="plateau check (0.95)")
    axes[0].axhline(TARGET, color="black", ls=":", lw=1, label="target (0.6)")
    axes[0].set(
        xlabel="optimizer step",
        ylabel=f"last-stack L_det / all-zero L_det ({SMOOTH}-step mean, clipped at 3)",
        title="Leaving the all-zero plateau (1 = on it)",
    )
    axes[1].set(
        xlabel="optimizer step",
        ylabel=f"mean heatmap peak ({SMOOTH}-step mean, clipped at 1.5)",
        title="Heatmap peak (targets: 1)",
        ylim=(0, 1.55),
    )
    axes[1].axhline(1.0, color="grey", lw=1)
    axes[2].set(
        xlabel="optimizer step",
        ylabel="2D error (mm) on rendered test poses",
        title="Validation 2D error (dotted: oracle constant pose)",
        yscale="log",
    )
    for ax in axes:
        ax.set_xscale("log")  # full-size runs are 300 steps, reduced-width ones 2000
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out.with_suffix(".png"), dpi=110)
        out.with_suffix(".md").write_text(table.to_markdown(index=False) + "\n")
    print(table.to_markdown(index=False))
    return table
