"""The panel types of Fig. 3, shared by every figure of the package.

Upper panels: per-joint mean error as grouped bars (plus the overall mean).
Lower panels: success-rate curves over distance thresholds.
Methods are told apart by hatching, marker and line style as well as by colour, so the
figures stay readable in greyscale print.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import cycle, islice
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from handpose_lib import metrics
from handpose_lib.evaluate import MethodResult

_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++", "**", "||", "OO")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h")
_LINESTYLES = ("-", "--", "-.", ":")

SUCCESS_LABELS = {
    "max": ("Maximum allowed distance to GT (mm)", "Fraction of frames within distance"),
    "mean": ("Mean distance threshold (mm)", "Fraction of frames within distance"),
    "joints": ("Distance threshold (mm)", "Fraction of joints within distance"),
}


def method_styles(n: int) -> list[dict]:
    """`n` distinct styles; neighbours differ in grey level, hatch, marker and line style."""
    greys = np.linspace(0.0, 0.8, max(n, 2))
    colors = [plt.get_cmap("viridis")(g) for g in greys[:n]]
    hatches = list(islice(cycle(_HATCHES), n))
    markers = list(islice(cycle(_MARKERS), n))
    linestyles = list(islice(cycle(_LINESTYLES), n))
    return [
        {"color": c, "hatch": h, "marker": m, "linestyle": ls}
        for c, h, m, ls in zip(colors, hatches, markers, linestyles, strict=True)
    ]


def plot_per_joint_errors(
    ax: Axes, results: Sequence[MethodResult], joint_names: Sequence[str]
) -> None:
    """Grouped bars: one group per joint plus "Mean", one bar per method."""
    labels = [*joint_names, "Mean"]
    n_methods = len(results)
    width = 0.8 / max(n_methods, 1)
    x = np.arange(len(labels))
    for i, (r, style) in enumerate(zip(results, method_styles(n_methods), strict=True)):
        values = np.append(r.per_joint_mm, r.mean_error_mm)
        ax.bar(
            x - 0.4 + (i + 0.5) * width,
            values,
            width,
            label=_legend_name(r),
            color=style["color"],
            hatch=style["hatch"],
            edgecolor="black",
            linewidth=0.4,
        )
    ax.set_xticks(x, labels, rotation=90)
    ax.set_ylabel("Mean error (mm)")
    ax.grid(True, axis="y", alpha=0.4)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def plot_success_curves(
    ax: Axes,
    results: Sequence[MethodResult],
    kind: str = "max",
    thresholds_mm: np.ndarray = metrics.DEFAULT_THRESHOLDS_MM,
) -> None:
    """Success-rate curves of `kind` ("max", "mean" or "joints") for each method."""
    curve_of = metrics.SUCCESS_CURVES[kind]
    mark_every = max(len(thresholds_mm) // 8, 1)
    for i, (r, style) in enumerate(zip(results, method_styles(len(results)), strict=True)):
        ax.plot(
            thresholds_mm,
            curve_of(r.errors_mm, thresholds_mm),
            label=_legend_name(r),
            color=style["color"],
            linestyle=style["linestyle"],
            marker=style["marker"],
            markevery=(i % mark_every, mark_every),
            markersize=4,
            linewidth=1.2,
        )
    xlabel, ylabel = SUCCESS_LABELS[kind]
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(thresholds_mm[0], thresholds_mm[-1])
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.4)


def _legend_name(r: MethodResult) -> str:
    return r.name if r.subset == "all" else f"{r.name} ({r.subset})"


def per_joint_figure(
    results: Sequence[MethodResult], joint_names: Sequence[str], title: str = ""
) -> Figure:
    """An upper panel of Fig. 3, legend outside the bars."""
    fig, ax = plt.subplots(figsize=(10, 4))
    plot_per_joint_errors(ax, results, joint_names)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def success_figure(results: Sequence[MethodResult], kind: str = "max", title: str = "") -> Figure:
    """A lower panel of Fig. 3."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    plot_success_curves(ax, results, kind)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Save `fig` as `<stem>.png` (150 dpi) and `<stem>.pdf`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150)
    # A fixed creation date keeps regenerated PDFs byte-identical when nothing changed.
    fig.savefig(paths[1], metadata={"CreationDate": None})
    return paths
