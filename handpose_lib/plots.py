"""Charts of the package: the panel types of Fig. 3, seed bands, the leaderboard's progress by
year and top-methods panels, training curves, centre errors, and `save_figure`, the one way
every notebook writes a figure.

Upper panels of Fig. 3: per-joint mean error as grouped bars (plus the overall mean). Lower
panels: success-rate curves over distance thresholds. Methods are told apart by hatching,
marker and line style as well as by colour, so the figures stay readable in greyscale print.
Pictures (depth frames, crops, heatmaps, attention masks) are drawn by `viz`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from itertools import cycle, islice, pairwise
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from handpose_lib import metrics
from handpose_lib.evaluate import MethodResult
from handpose_lib.viz import CENTER_STYLES

# --------------------------------------------------------------------------------------------
# Writing figures

FIGURE_DPI = 150
ENV_FIGURE_DPI = "HANDPOSE_FIGURE_DPI"  # e.g. 300 for print; the test suite draws at 72


def figure_dpi() -> float:
    """The resolution `save_figure` writes PNGs at: $HANDPOSE_FIGURE_DPI, else FIGURE_DPI."""
    chosen = os.environ.get(ENV_FIGURE_DPI, "").strip()
    if not chosen:
        return float(FIGURE_DPI)
    try:
        dpi = float(chosen)
    except ValueError:
        dpi = 0.0
    if not 10 <= dpi <= 1200:
        raise ValueError(f"{ENV_FIGURE_DPI}={chosen!r}: expected dots per inch, 10 to 1200")
    return dpi


ENV_FIGURE_FORMATS = "HANDPOSE_FIGURE_FORMATS"  # e.g. "png": the test suite skips the PDFs
FIGURE_FORMATS = ("png", "pdf")


def figure_formats() -> tuple[str, ...]:
    """The formats `save_figure` writes: $HANDPOSE_FIGURE_FORMATS (comma-separated, of
    FIGURE_FORMATS), else both."""
    chosen = os.environ.get(ENV_FIGURE_FORMATS, "")
    formats = tuple(f.strip() for f in chosen.split(",") if f.strip()) or FIGURE_FORMATS
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown:
        raise ValueError(f"{ENV_FIGURE_FORMATS}={chosen!r}: expected some of {FIGURE_FORMATS}")
    return formats


def save_figure(fig: Figure, name: str, figures_dir: str | os.PathLike) -> list[Path]:
    """Write `fig` as `<name>.png` (`figure_dpi()`) and `<name>.pdf` in `figures_dir` (created
    if missing; `figure_formats` says which), cropped to the drawn content; returns the
    paths written."""
    if not name or Path(name).name != name or Path(name).suffix in (".png", ".pdf"):
        raise ValueError(f"figure name {name!r}: expected a file stem such as 'loc_crops'")
    out_dir = Path(figures_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dpi = figure_dpi()
    paths = []
    for fmt in figure_formats():
        path = out_dir / f"{name}.{fmt}"
        # A fixed creation date keeps regenerated PDFs byte-identical when nothing changed.
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# Fig. 3 panels

_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++", "**", "||", "OO")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h")
_LINESTYLES = ("-", "--", "-.", ":")

SUCCESS_LABELS = {
    "max": ("Maximum allowed distance to GT (mm)", "Fraction of frames within distance"),
    "mean": ("Mean distance threshold (mm)", "Fraction of frames within distance"),
    "joints": ("Distance threshold (mm)", "Fraction of joints within distance"),
}


def method_styles(n: int) -> list[dict]:
    """`n` distinct styles: up to 10 methods the hues of the qualitative "tab10" palette
    (shades of one colormap are hard to tell apart), more: viridis shades. Hatches, markers
    and line styles differ between neighbours too, so a greyscale print still tells them
    apart."""
    if n <= 10:
        colors = [plt.get_cmap("tab10")(k) for k in range(n)]
    else:
        colors = [plt.get_cmap("viridis")(g) for g in np.linspace(0.0, 0.8, n)]
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
    curve_of = _curve(kind)
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


def plot_seed_bands(
    ax: Axes,
    results_by_method: Mapping[str, Sequence[MethodResult]],
    kind: str = "max",
    thresholds_mm: np.ndarray = metrics.DEFAULT_THRESHOLDS_MM,
) -> None:
    """Shade the min-max range over seeds of each method's success curve.

    Methods are taken in the mapping's order and coloured as `plot_success_curves` colours
    the same methods in the same order; a method with one seed gets no band.
    """
    curve_of = _curve(kind)
    styles = method_styles(len(results_by_method))
    for results, style in zip(results_by_method.values(), styles, strict=True):
        if len(results) < 2:
            continue
        curves = np.stack([curve_of(r.errors_mm, thresholds_mm) for r in results])
        ax.fill_between(
            thresholds_mm, curves.min(0), curves.max(0), color=style["color"], alpha=0.2, lw=0
        )


# Line styles (matplotlib keyword arguments) of the floors, in turn.
FLOOR_STYLES: tuple[dict[str, Any], ...] = (
    {"color": "black", "linestyle": (0, (4, 2))},
    {"color": "dimgrey", "linestyle": (0, (1, 1.5))},
)


def plot_floors_per_joint(ax: Axes, floors: Sequence[MethodResult]) -> None:
    """Constant-pose floors over the per-joint bars: one horizontal mark per joint group
    (and "Mean") at each floor's error, labelled with the floor's name."""
    for floor, style in zip(floors, cycle(FLOOR_STYLES), strict=False):
        values = np.append(floor.per_joint_mm, floor.mean_error_mm)
        x = np.arange(len(values))
        ax.hlines(values, x - 0.45, x + 0.45, linewidth=1.6, label=floor.name, zorder=4, **style)


def plot_floors_success(
    ax: Axes,
    floors: Sequence[MethodResult],
    kind: str = "max",
    thresholds_mm: np.ndarray = metrics.DEFAULT_THRESHOLDS_MM,
) -> None:
    """Success curves of constant-pose floors, thin black / grey and unmarked, so they read
    as references rather than methods."""
    curve_of = _curve(kind)
    for floor, style in zip(floors, cycle(FLOOR_STYLES), strict=False):
        curve = curve_of(floor.errors_mm, thresholds_mm)
        ax.plot(thresholds_mm, curve, linewidth=1.4, label=floor.name, **style)


def _curve(kind: str):
    if kind not in metrics.SUCCESS_CURVES:
        raise ValueError(f"success curve {kind!r}: expected one of {tuple(metrics.SUCCESS_CURVES)}")
    return metrics.SUCCESS_CURVES[kind]


def _legend_name(r: MethodResult) -> str:
    return r.name if r.subset == "all" else f"{r.name} ({r.subset})"


def legend_outside(ax: Axes, fontsize: float = 7) -> None:
    """The legend to the right of the axes, where it cannot hide a bar or a curve."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def per_joint_figure(
    results: Sequence[MethodResult],
    joint_names: Sequence[str],
    title: str = "",
    floors: Sequence[MethodResult] = (),
) -> Figure:
    """An upper panel of Fig. 3, legend outside the bars; `floors` (constant-pose floors)
    are marked over the bars."""
    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    plot_per_joint_errors(ax, results, joint_names)
    plot_floors_per_joint(ax, floors)
    ax.set_title(title, fontsize=10)
    legend_outside(ax)
    return fig


def success_figure(
    results: Sequence[MethodResult],
    kind: str = "max",
    title: str = "",
    seed_bands: Mapping[str, Sequence[MethodResult]] | None = None,
    floors: Sequence[MethodResult] = (),
) -> Figure:
    """A lower panel of Fig. 3, legend outside the curves; `seed_bands` (method -> results
    of its seeds, in the order of `results`) adds the min-max band over seeds, `floors` the
    curves of constant-pose floors."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5), layout="constrained")
    plot_success_curves(ax, results, kind)
    plot_floors_success(ax, floors, kind)
    if seed_bands:
        plot_seed_bands(ax, seed_bands, kind)
    ax.set_title(title, fontsize=10)
    legend_outside(ax)
    return fig


# --------------------------------------------------------------------------------------------
# Leaderboard: the field's progress by year, and the top methods' Fig. 3 style panels

MAX_TOP_CURVES = 5  # curves per top-methods panel; the other methods' numbers are in the table
PAPER_STYLE: dict[str, Any] = {
    "color": "tab:red",
    "marker": "*",
    "s": 170,
    "edgecolors": "white",
    "linewidths": 0.6,
    "zorder": 5,
}
_POINT_SIZE = 30  # scatter marker area (points^2) of a method
# Where a label may go, (dx, dy) in points from its point, tried in turn: beside it first,
# then above / below, then the same directions further out (with a leader line).
_LABEL_DIRECTIONS = ((7, 0), (-7, 0), (5, 7), (-5, 7), (5, -7), (-5, -7), (0, 10), (0, -10))
_LABEL_OFFSETS = [(dx * r, dy * r) for r in range(1, 9) for dx, dy in _LABEL_DIRECTIONS]


def leaderboard_by_year_figure(boards: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """Mean error against year, one panel per dataset (key: "icvl", "nyu"; value: its
    `tables.leaderboard`): every method with a year is a point (hollow when it was evaluated on
    a test subset only), the paper's printed row a red star, and a dashed step line the best so
    far (over the full-test-set rows, the paper's included). Points of one year are spread
    sideways in order of error. The best method of each year and the paper are labelled with
    their mean error, each label placed clear of the other labels, the points and the line."""
    fig, axes = plt.subplots(1, len(boards), figsize=(7.2 * len(boards), 5.8), squeeze=False)
    # A fixed layout: the labels are placed in display space, so the axes must not move after
    # (saving with bbox_inches="tight" only crops).
    fig.subplots_adjust(left=0.06, right=0.98, top=0.9, bottom=0.18, wspace=0.15)
    for ax, (dataset, board) in zip(axes[0], boards.items(), strict=True):
        _plot_by_year(ax, board)
        methods = int((~board["paper"].astype(bool)).sum())
        ax.set_title(f"{dataset.upper()}: {methods} registered methods and the paper", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    for ax, board in zip(axes[0], boards.values(), strict=True):
        _label_by_year(fig, ax, board)
    return fig


def year_positions(board: pd.DataFrame) -> pd.Series:
    """x of each row of `board` with a year: the year, spread by up to +-0.3 among the rows of
    the same year in order of mean error (NaN for rows without a year)."""
    x = pd.Series(np.nan, index=board.index)
    dated = board[board["year"].notna()]
    for year, group in dated.groupby("year"):
        order = group.sort_values("mean error (mm)", kind="stable").index
        step = min(0.1, 0.6 / max(len(order) - 1, 1))
        x[order] = int(str(year)) + (np.arange(len(order)) - (len(order) - 1) / 2) * step
    return x


def best_so_far(board: pd.DataFrame) -> pd.Series:
    """Best mean error up to each year (index: every year from the first to the last), over
    the rows on the full test set, the paper's printed row included."""
    ranked = board[(board["test subset"] == "all") & board["year"].notna()]
    by_year = ranked.groupby("year")["mean error (mm)"].min()
    years = range(int(by_year.index.min()), int(by_year.index.max()) + 1)
    return by_year.reindex(years).cummin().ffill()


def by_year_labelled(board: pd.DataFrame) -> list[int]:
    """Index labels of the rows `leaderboard_by_year_figure` labels, in the order they are
    placed: the paper's row, then the best method of each year (the paper's row aside)."""
    dated = board[board["year"].notna() & ~board["paper"].astype(bool)]
    best = dated.loc[dated.groupby("year")["mean error (mm)"].idxmin()].index
    return [*board.index[board["paper"].astype(bool)], *best]


def _plot_by_year(ax: Axes, board: pd.DataFrame) -> None:
    x = year_positions(board)
    y = board["mean error (mm)"].astype(float)
    paper = board["paper"].astype(bool)
    partial = board["test subset"] != "all"
    full = ~paper & ~partial & x.notna()
    ax.scatter(
        x[full], y[full], s=_POINT_SIZE, color="tab:blue", zorder=3, label="method (recomputed)"
    )
    ax.scatter(
        x[partial & x.notna()],
        y[partial & x.notna()],
        s=_POINT_SIZE,
        facecolors="none",
        edgecolors="tab:blue",
        zorder=3,
        label="method, on a test subset only",
    )
    ax.scatter(x[paper], y[paper], label="Ours (paper), as printed", **PAPER_STYLE)
    best = best_so_far(board)
    years = best.index.to_numpy()
    ax.step(
        [*(years - 0.5), years[-1] + 0.5],
        [*best, best.iloc[-1]],
        where="post",
        color="grey",
        linewidth=1.1,
        linestyle="--",
        zorder=2,
        label="best so far",
    )
    ax.set_xlim(years[0] - 0.8, years[-1] + 0.8)
    ax.set_ylim(max(0.0, float(y.min()) - 2.0), float(y.max()) + 1.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="year (points of one year spread sideways)", ylabel="mean 3D joint error (mm)")
    ax.grid(True, alpha=0.4)


def _label_by_year(fig: Figure, ax: Axes, board: pd.DataFrame) -> None:
    x, y = year_positions(board), board["mean error (mm)"].astype(float)
    px = fig.dpi / 72  # display pixels per point
    obstacles = []
    for i in board.index[x.notna()]:
        half = (np.sqrt(PAPER_STYLE["s"] if board.loc[i, "paper"] else _POINT_SIZE) / 2 + 1) * px
        obstacles.append(_box(ax.transData.transform((x[i], y[i])), half))
    lines = []  # the best-so-far steps, as thin boxes along each segment
    for line in ax.get_lines():
        xy = ax.transData.transform(line.get_xydata())
        lines += [Bbox([a, b]).padded(1.5 * px) for a, b in _step_segments(xy)]
    texts, anchors, styles = [], [], []
    for i in by_year_labelled(board):
        row = board.loc[i]
        subset = "" if row["test subset"] == "all" else f" ({row['test subset']})"
        texts.append(f"{row['method']}{subset} {row['mean error (mm)']:.2f}")
        anchors.append((x[i], y[i]))
        styles.append({"color": "tab:red", "fontweight": "bold"} if row["paper"] else {})
    place_labels(fig, ax, anchors, texts, obstacles, styles, crossable=lines)


def _step_segments(xy: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The horizontal and vertical segments of a `where="post"` step line through `xy`."""
    segments = []
    for (x0, y0), (x1, y1) in pairwise(xy):
        segments += [
            (np.array([x0, y0]), np.array([x1, y0])),
            (np.array([x1, y0]), np.array([x1, y1])),
        ]
    return segments


def place_labels(
    fig: Figure,
    ax: Axes,
    anchors: Sequence[tuple[float, float]],
    texts: Sequence[str],
    obstacles: Sequence[Bbox] = (),
    styles: Sequence[Mapping[str, Any]] | None = None,
    fontsize: float = 7,
    crossable: Sequence[Bbox] = (),
) -> list[Any]:
    """Annotate each anchor (data coordinates) with its text at the first offset of
    `_LABEL_OFFSETS` where the label stays inside the axes and clear of `obstacles` (display
    boxes: markers), of `crossable` (lines) and of the labels placed before it. Where none is
    clear, at the offset of least cost: 10 per marker or label overlapped and per other
    marker a leader line passes, 1 per line crossed, 0.3 per ring of offsets further out (so a
    label crosses a line rather than going four rings out). Labels beyond the first ring of
    offsets get a leader line. The axes must be at their final size and limits. Returns the
    annotations."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    inside = ax.get_window_extent(renderer)
    taken = list(obstacles)
    placed = []
    for k, (anchor, text) in enumerate(zip(anchors, texts, strict=True)):
        style = dict(styles[k]) if styles else {}
        point = ax.transData.transform(anchor)
        others = [box for box in obstacles if not box.contains(*point)]
        best: tuple[float, int] | None = None
        for j, (dx, dy) in enumerate(_LABEL_OFFSETS):
            note = _annotate(ax, anchor, text, dx, dy, j, fontsize, style)
            extent = _text_extent(note, renderer)
            note.remove()
            ring_cost = 0.3 * (j // len(_LABEL_DIRECTIONS))  # further out: a little worse
            cost = ring_cost + 10.0 * sum(extent.overlaps(box) for box in taken)
            cost += sum(extent.overlaps(box) for box in crossable)
            cost += 0 if _contains(inside, extent) else 1000
            if j >= len(_LABEL_DIRECTIONS):  # the leader line, from the point to the text
                end = np.clip(point, [extent.x0, extent.y0], [extent.x1, extent.y1])
                along = point + np.linspace(0, 1, 12)[:, None] * (end - point)
                cost += 10.0 * sum(any(box.contains(*xy) for xy in along) for box in others)
            if best is None or cost < best[0]:
                best = (cost, j)
            if cost == ring_cost:  # clear: no later offset can do better
                break
        assert best is not None
        dx, dy = _LABEL_OFFSETS[best[1]]
        note = _annotate(ax, anchor, text, dx, dy, best[1], fontsize, style)
        taken.append(_text_extent(note, renderer))
        placed.append(note)
    return placed


def _text_extent(note: Any, renderer: Any) -> Bbox:
    """The box of an annotation's text alone (`Annotation.get_window_extent` includes the
    leader line, which always reaches the point)."""
    note.update_positions(renderer)
    return Text.get_window_extent(note, renderer)


def _annotate(
    ax: Axes,
    anchor: tuple[float, float],
    text: str,
    dx: float,
    dy: float,
    j: int,
    fontsize: float,
    style: Mapping[str, Any],
) -> Any:
    far = j >= len(_LABEL_DIRECTIONS)
    return ax.annotate(
        text,
        anchor,
        xytext=(dx, dy),
        textcoords="offset points",
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="center" if dy == 0 else "bottom" if dy > 0 else "top",
        fontsize=fontsize,
        arrowprops={"arrowstyle": "-", "color": "dimgrey", "lw": 0.6} if far else None,
        zorder=6,
        **style,
    )


def _box(center: np.ndarray, half: float) -> Bbox:
    return Bbox.from_extents(center[0] - half, center[1] - half, center[0] + half, center[1] + half)


def _contains(outer: Bbox, inner: Bbox) -> bool:
    return bool(
        outer.x0 <= inner.x0
        and inner.x1 <= outer.x1
        and outer.y0 <= inner.y0
        and inner.y1 <= outer.y1
    )


def top_methods_figures(
    results: Sequence[MethodResult],
    joint_names: Sequence[str],
    title: str = "",
    paper_mm: float | None = None,
    thresholds_mm: Sequence[float] = (20.0, 40.0),
) -> tuple[Figure, Figure]:
    """Fig. 3 style panels of a few top methods (at most MAX_TOP_CURVES): per-joint mean error
    with, if given, the paper's printed mean as a red mark over the "Mean" group (it published
    no per-joint errors), and the success-frame curves with the leaderboard's thresholds
    (`thresholds_mm`) as dotted vertical lines."""
    if not results or len(results) > MAX_TOP_CURVES:
        raise ValueError(f"top_methods_figures: 1 to {MAX_TOP_CURVES} methods, got {len(results)}")
    per_joint = per_joint_figure(results, joint_names, f"{title}: per-joint mean error")
    if paper_mm is not None:
        ax = per_joint.axes[0]
        mean_x = len(joint_names)
        ax.hlines(
            paper_mm,
            mean_x - 0.45,
            mean_x + 0.45,
            color=PAPER_STYLE["color"],
            linewidth=2,
            zorder=4,
            label=f"Ours (paper), as printed: {paper_mm:.3f} mm (mean only)",
        )
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda k: labels[k].startswith("Ours (paper)"))
        ax.legend(
            [handles[k] for k in order],
            [labels[k] for k in order],
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0,
        )
    success = success_figure(results, "max", f"{title}: success frames")
    ax = success.axes[0]
    for threshold in thresholds_mm:
        ax.axvline(threshold, color="grey", linestyle=":", linewidth=1, label="_threshold")
    return per_joint, success


# --------------------------------------------------------------------------------------------
# Training curves

_STACK_COLUMN = re.compile(r"train_det_(\d+)$")


def plot_losses(ax: Axes, history: pd.DataFrame) -> None:
    """Training loss per epoch (log scale); for pose networks also its parts: L_det of each
    stack and L_reg (columns train_det_<i>, train_reg of `metrics.csv`)."""
    _require_columns(history, ("epoch", "train_loss"))
    stacks = sorted((int(m[1]), c) for c in history.columns if (m := _STACK_COLUMN.match(str(c))))
    total_label = "total L (Eq. 1)" if stacks else "training loss"
    ax.plot(history["epoch"], history["train_loss"], "o-", color="black", label=total_label)
    for (i, column), marker in zip(stacks, cycle("sD^v"), strict=False):
        label = f"$L_{{det}}^{{{i + 1}}}$ (stack {i + 1})"
        ax.plot(history["epoch"], history[column], marker=marker, linestyle="--", label=label)
    if stacks and "train_reg" in history:
        ax.plot(history["epoch"], history["train_reg"], "^-.", label="$L_{reg}$ (depth)")
    ax.set(xlabel="epoch", ylabel="training loss (mean over the epoch's steps)", yscale="log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize=8)


def lr_segments(history: pd.DataFrame) -> list[tuple[int, int, float]]:
    """(first epoch, last epoch, lr) of each run of epochs at one learning rate."""
    _require_columns(history, ("epoch", "lr"))
    segments: list[tuple[int, int, float]] = []
    for epoch, lr in zip(history["epoch"].astype(int), history["lr"].astype(float), strict=True):
        if segments and np.isclose(segments[-1][2], lr):
            segments[-1] = (segments[-1][0], epoch, lr)
        else:
            segments.append((epoch, epoch, lr))
    return segments


def shade_lr_segments(ax: Axes, segments: Sequence[tuple[float, float, float]]) -> None:
    """Alternate light bands over each (x0, x1, lr) segment, its lr written at the top."""
    for k, (x0, x1, lr) in enumerate(segments):
        ax.axvspan(x0, x1, color="grey", alpha=0.10 if k % 2 else 0.0, lw=0, zorder=0)
        ax.annotate(
            f"lr {lr:g}",
            ((x0 + x1) / 2, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, -3),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8,
            color="dimgrey",
        )


def plot_validation(
    ax: Axes,
    history: pd.DataFrame,
    ylabel: str = "mean 3D joint error (mm)",
    floors: Sequence[tuple[str, float]] = (),
) -> None:
    """Validation error at the epochs that measured it, joined by a line (epochs without a
    validation are skipped, not drawn as gaps), constant-pose floors (label, mm) as
    horizontal lines, and the learning rate as shaded bands of the epochs it held."""
    _require_columns(history, ("epoch", "val_mean_error_mm"))
    measured = history.dropna(subset=["val_mean_error_mm"])
    ax.plot(
        measured["epoch"],
        measured["val_mean_error_mm"],
        "o-",
        color="tab:red",
        label=f"validation ({len(measured)} of {len(history)} epochs)",
    )
    for epoch, value in zip(measured["epoch"], measured["val_mean_error_mm"], strict=True):
        ax.annotate(
            f"{value:.1f}", (epoch, value), xytext=(0, 6), textcoords="offset points", ha="center"
        )
    for (name, mm), style in zip(floors, cycle(FLOOR_STYLES), strict=False):
        marked = name if name.startswith("floor") else f"floor: {name}"
        ax.axhline(mm, lw=1.2, label=f"{marked} ({mm:.1f} mm)", **style)
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.set_xlim(0.5, max(float(history["epoch"].max()), 1.0) + 0.5)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.margins(y=0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.4)
    if "lr" in history:
        # Epoch e is drawn at x = e; it trained over [e - 0.5, e + 0.5].
        shade_lr_segments(ax, [(a - 0.5, b + 0.5, lr) for a, b, lr in lr_segments(history)])
    # Below the axes: inside, it would cover the points or the floors.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)


def training_curves_figure(
    history: pd.DataFrame,
    title: str = "",
    val_ylabel: str = "mean 3D joint error (mm)",
    val_name: str = "validation frames",
    floors: Sequence[tuple[str, float]] = (),
) -> Figure:
    """Two panels of a run's `metrics.csv`: the loss terms, and the validation error with
    the learning rate's epochs shaded and the constant-pose `floors` (label, mm)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.3), layout="constrained")
    plot_losses(axes[0], history)
    axes[0].set_title("training loss" + (" terms of Eq. 1" if "train_reg" in history else ""))
    plot_validation(axes[1], history, val_ylabel, floors)
    axes[1].set_title(f"validation error ({val_name})")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def validation_by_step_figure(
    histories: Mapping[str, Sequence[pd.DataFrame]],
    steps_per_epoch: int | None,
    title: str = "",
    floors: Sequence[tuple[str, float]] = (),
) -> Figure:
    """Validation error against optimizer step for each method (a variant's runs' metrics.csv,
    one per seed): the mean over seeds as a bold line, each seed as a thin line of the same
    colour (bands of several methods would merge into one mass), constant-pose floors
    (label, mm) as horizontal references, and the learning rate's steps as shaded bands.
    With steps_per_epoch None (a whole dataset per epoch) the x axis is the epoch.

    A method's seeds must have validated at the same epochs (same profile)."""
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    first = next(iter(histories.values()), [])
    if first and "lr" in first[0]:
        per = steps_per_epoch or 1
        # Epoch e covers steps ((e - 1) per, e per]; its validation is drawn at e per.
        shade_lr_segments(ax, [((a - 1) * per, b * per, lr) for a, b, lr in lr_segments(first[0])])
    styles = method_styles(len(histories))
    for (label, runs), style in zip(histories.items(), styles, strict=True):
        measured = []
        for history in runs:
            _require_columns(history, ("epoch", "val_mean_error_mm"))
            measured.append(history.dropna(subset=["val_mean_error_mm"]).set_index("epoch"))
        epochs = measured[0].index
        if any(not m.index.equals(epochs) for m in measured):
            raise ValueError(f"{label}: its runs validated at different epochs")
        values = np.stack([m["val_mean_error_mm"].to_numpy() for m in measured])
        steps = epochs.to_numpy() * (steps_per_epoch or 1)
        seeds = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
        line = {k: style[k] for k in ("color", "marker", "linestyle")}
        ax.plot(steps, values.mean(0), ms=4, lw=2.0, label=label + seeds, **line)
        if len(runs) > 1:
            for seed_values in values:
                ax.plot(steps, seed_values, color=style["color"], lw=0.7, alpha=0.45)
    for (name, mm), style in zip(floors, cycle(FLOOR_STYLES), strict=False):
        marked = name if name.startswith("floor") else f"floor: {name}"
        ax.axhline(mm, lw=1.2, label=f"{marked} ({mm:.1f} mm)", **style)
    xlabel = "optimizer step" if steps_per_epoch else "epoch"
    ax.set(xlabel=xlabel, ylabel="validation mean 3D joint error (mm)")
    ax.grid(True, alpha=0.4)
    legend_outside(ax)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _require_columns(history: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in history]
    if missing:
        raise ValueError(
            f"history lacks columns {missing} (a run's metrics.csv has epoch, lr, train_loss, "
            f"val_mean_error_mm); got {list(history.columns)}"
        )


# --------------------------------------------------------------------------------------------
# Hand-centre errors

OFFSET_COMPONENTS = {"toward_wrist": "toward wrist", "across": "across", "depth": "depth"}


def plot_error_histograms(ax: Axes, errors_mm: Mapping[str, np.ndarray], bins: int = 25) -> None:
    """Overlaid histograms of (N,) errors in mm, one per label, with the mean in the legend.

    The range ends at the 99th percentile; the last bin collects the tail beyond it."""
    arrays = {label: np.asarray(e, dtype=np.float64) for label, e in errors_mm.items()}
    if not arrays or any(a.size == 0 for a in arrays.values()):
        raise ValueError("plot_error_histograms needs at least one non-empty error array")
    top = max(float(np.percentile(a, 99)) for a in arrays.values())
    edges = np.linspace(0.0, max(top, 1.0), bins + 1)
    highest = 1.0
    for (label, errors), style in zip(arrays.items(), cycle(CENTER_STYLES), strict=False):
        counts, _, _ = ax.hist(
            np.clip(errors, 0, edges[-1]),
            bins=edges.tolist(),  # matplotlib's stubs want a sequence
            histtype="step",
            linewidth=2,
            color=style["color"],
            label=f"{label}: mean {errors.mean():.1f} mm",
        )
        highest = max(highest, float(np.max(counts)))
    ax.set_ylim(0, highest * 1.3)  # room for the legend above the bars
    ax.set(xlabel="3D distance to the joint centroid (mm)", ylabel="frames")
    ax.legend(fontsize=7)


def plot_cumulative_errors(
    ax: Axes,
    errors_mm: Mapping[str, np.ndarray],
    thresholds_mm: np.ndarray = metrics.DEFAULT_THRESHOLDS_MM,
) -> None:
    """Fraction of frames whose (N,) centre error is within each threshold, per label."""
    for (label, errors), style in zip(errors_mm.items(), cycle(CENTER_STYLES), strict=False):
        fraction = metrics.success_rate_joints(np.asarray(errors)[:, None], thresholds_mm)
        ax.plot(thresholds_mm, fraction, color=style["color"], linewidth=2, label=label)
    ax.set(
        xlabel="distance to the true hand centre (mm)",
        ylabel="fraction of frames within",
        xlim=(thresholds_mm[0], thresholds_mm[-1]),
        ylim=(0, 1),
    )
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize=8, loc="lower right")


def plot_offset_bias(ax: Axes, offsets: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Mean signed offset of each estimate along the hand's axes (`measures.offsets_along_hand`
    per label), as grouped bars."""
    n = max(len(offsets), 1)
    width = 0.8 / n
    x = np.arange(len(OFFSET_COMPONENTS))
    for k, ((label, parts), style) in enumerate(
        zip(offsets.items(), cycle(CENTER_STYLES), strict=False)
    ):
        means = [float(np.mean(parts[c])) for c in OFFSET_COMPONENTS]
        ax.bar(
            x - 0.4 + (k + 0.5) * width,
            means,
            width,
            color=style["color"],
            edgecolor="black",
            label=label,
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, list(OFFSET_COMPONENTS.values()))
    ax.set(ylabel="mean signed offset (mm)", title="bias along the hand's axes")
    ax.legend(fontsize=8)


def centre_error_figure(
    errors_mm: Mapping[str, np.ndarray],
    offsets: Mapping[str, Mapping[str, np.ndarray]],
    title: str = "",
) -> Figure:
    """Histogram, cumulative curve and bias along the hand of each centre estimate's (N,)
    3D error (label -> errors; label -> `measures.offsets_along_hand` parts)."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.3), width_ratios=(1, 1, 0.8))
    n = len(next(iter(errors_mm.values()))) if errors_mm else 0
    plot_error_histograms(axes[0], errors_mm)
    axes[0].set(
        title=f"centre error, {n} frames", xlabel="3D distance to the true hand centre (mm)"
    )
    plot_cumulative_errors(axes[1], errors_mm)
    axes[1].set_title("cumulative centre error")
    plot_offset_bias(axes[2], offsets)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
