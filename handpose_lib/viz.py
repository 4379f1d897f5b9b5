"""Drawing primitives for pictures: depth frames, skeletons, crops, heatmaps, attention
masks, hand centres. Each function draws on one Axes; `views` composes whole figures from
them and `plots` draws the charts.

Full-frame panels use image pixels (u to the right, v down). Crop panels use normalized crop
coordinates, -1 at the left/top edge and +1 at the right/bottom edge (the package's `uvd_crop`
convention), so joints, crops and heatmaps of any size share one set of axes. Depth is shown
in millimetres; a normalized crop gets a colorbar in both units (normalized value and mm from
the cube centre).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from handpose_lib.joints import JOINT_NAMES, bones
from handpose_lib.preprocess import projected_box


def layout_of(dataset: str) -> str:
    """Joint layout and camera of a dataset name: "synthetic" frames use ICVL's."""
    layout = "icvl" if dataset == "synthetic" else dataset
    if layout not in JOINT_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}: expected synthetic, icvl or nyu")
    return layout


# --------------------------------------------------------------------------------------------
# Skeletons

SKELETON_EDGES: dict[str, tuple[tuple[int, int], ...]] = {
    layout: tuple(bones(layout)) for layout in JOINT_NAMES
}

# One colour per finger (by joint-name prefix); palm and wrist joints are white.
FINGER_COLORS = {
    "Thumb": "tab:red",
    "Index": "tab:orange",
    "Mid": "gold",
    "Ring": "tab:green",
    "Pinky": "tab:cyan",
}
NEUTRAL_COLOR = "white"


def joint_color(name: str) -> str:
    return FINGER_COLORS.get(name.split(".")[0], NEUTRAL_COLOR)


def draw_skeleton(
    ax: Axes,
    uv: np.ndarray,
    dataset: str,
    *,
    highlight: int | None = None,
    labels: bool = False,
    size: float = 12.0,
) -> None:
    """Bones and joints of (J, 2+) points `uv` in the axes' coordinates, coloured by finger.

    `highlight` circles one joint; `labels` writes every joint's name in two columns at the
    sides of the axes, each joined to its joint by a thin line (`label_joints_aside`: set the
    axes' limits first). Over an image the axes keep their limits: joints outside a crop are
    not shown.
    """
    limits = (ax.get_xlim(), ax.get_ylim()) if ax.images else None
    layout = layout_of(dataset)
    names = JOINT_NAMES[layout]
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[0] != len(names) or uv.shape[1] < 2:
        raise ValueError(f"uv must have shape ({len(names)}, 2 or 3) for {layout}, got {uv.shape}")
    for parent, child in SKELETON_EDGES[layout]:
        ax.plot(
            uv[[parent, child], 0],
            uv[[parent, child], 1],
            color=joint_color(names[child]),
            linewidth=1.5,
            solid_capstyle="round",
        )
    colors = [joint_color(n) for n in names]
    ax.scatter(uv[:, 0], uv[:, 1], s=size, c=colors, edgecolors="black", linewidths=0.5, zorder=3)
    if highlight is not None:
        ax.scatter(
            uv[highlight, 0],
            uv[highlight, 1],
            s=size * 12,
            facecolors="none",
            edgecolors="magenta",
            linewidths=1.5,
            zorder=4,
        )
    if labels:
        label_joints_aside(ax, uv, names)
    if limits is not None:
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])


def label_positions(
    uv: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float], inset: float = 0.03
) -> np.ndarray:
    """(J, 2) label anchors for (J, 2+) joints: joints left of the joints' median u get a
    label in a column at the left edge of the limits, the others at the right edge; each column
    spreads its labels evenly over the height, in the order of the joints' v (label y grows
    with joint v, whichever way the axis points), so the leader lines of a column do not
    cross and no two labels share a row."""
    uv = np.asarray(uv, dtype=np.float64)[:, :2]
    x0, x1 = xlim
    low, high = min(ylim), max(ylim)
    left = uv[:, 0] <= np.median(uv[:, 0])
    out = np.empty((len(uv), 2))
    for side, x in ((left, x0 + inset * (x1 - x0)), (~left, x1 - inset * (x1 - x0))):
        members = np.flatnonzero(side)
        members = members[np.argsort(uv[members, 1], kind="stable")]
        rows = np.linspace(0.08, 0.92, len(members)) if len(members) > 1 else np.array([0.5])
        out[members, 0] = x
        out[members, 1] = low + rows * (high - low)
    return out


def label_joints_aside(ax: Axes, uv: np.ndarray, names: list[str] | tuple[str, ...]) -> None:
    """Each joint's name in a column at the left or right edge of the axes (their current
    limits), joined to the joint by a thin line: readable where joints crowd together."""
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    anchors = label_positions(uv, xlim, ylim)
    middle = (xlim[0] + xlim[1]) / 2
    for (u, v), (x, y), name in zip(np.asarray(uv)[:, :2], anchors, names, strict=True):
        ax.annotate(
            name,
            (u, v),
            xytext=(x, y),
            textcoords="data",
            ha="left" if x < middle else "right",
            va="center",
            fontsize=7,
            color=joint_color(name),
            path_effects=[patheffects.withStroke(linewidth=2.5, foreground="black")],
            arrowprops={"arrowstyle": "-", "color": "white", "linewidth": 0.6, "alpha": 0.8},
            zorder=5,
        )


# --------------------------------------------------------------------------------------------
# Depth images and crops

# Near is bright; pixels without a reading (depth 0) are drawn in a dark blue.
MISSING_COLOR = "#1b2a49"
DEPTH_CMAP = plt.get_cmap("gray_r").with_extremes(bad=MISSING_COLOR)


def depth_limits(
    depth_mm: np.ndarray, percentiles: tuple[float, float] = (1, 99)
) -> tuple[float, float]:
    """(low, high) colour range in mm from the valid (> 0) pixels; (0, 1) if none."""
    valid = depth_mm[depth_mm > 0]
    if valid.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(valid, percentiles)
    return float(low), float(max(high, low + 1.0))


def hand_depth_limits(uvd: np.ndarray, margin_mm: float = 40.0) -> tuple[float, float]:
    """(low, high) colour range in mm around the joints' depths: shading on the hand, the
    forearm and background beyond it saturate."""
    d = np.asarray(uvd)[:, 2]
    return float(d.min() - margin_mm), float(d.max() + margin_mm)


def show_depth(
    ax: Axes,
    depth_mm: np.ndarray,
    *,
    limits: tuple[float, float] | None = None,
    title: str = "",
    colorbar: bool = True,
) -> AxesImage:
    """(H, W) depth in mm on pixel axes; missing pixels (0) in a dark colour."""
    low, high = limits if limits is not None else depth_limits(depth_mm)
    image = ax.imshow(np.ma.masked_less_equal(depth_mm, 0), cmap=DEPTH_CMAP, vmin=low, vmax=high)
    ax.set(xlabel="u (px)", ylabel="v (px)", title=title)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="depth (mm)")
        # The colour of pixels without a reading, as a swatch under the bar.
        bar.ax.text(
            0.5,
            -0.03,
            "■",
            color=MISSING_COLOR,
            fontsize=14,
            ha="center",
            va="top",
            transform=bar.ax.transAxes,
        )
        bar.ax.text(
            0.5, -0.10, "no\nreading", fontsize=7, ha="center", va="top", transform=bar.ax.transAxes
        )
    return image


CROP_EXTENT = (-1.0, 1.0, 1.0, -1.0)  # imshow extent in normalized crop coordinates
CROP_TICKS = (-1.0, -0.5, 0.0, 0.5, 1.0)
CROP_TICK_LABELS = ("-1", "-0.5", "0", "0.5", "1")  # short: neighbouring panels stay apart


def show_crop(
    ax: Axes,
    image: np.ndarray,
    cube_mm: float,
    *,
    title: str = "",
    colorbar: bool = True,
) -> AxesImage:
    """(S, S) normalized crop on normalized axes; the colorbar reads [-1, 1] on the left and
    millimetres from the cube centre (value x cube_mm / 2) on the right."""
    handle = ax.imshow(np.asarray(image), cmap=DEPTH_CMAP, vmin=-1.0, vmax=1.0, extent=CROP_EXTENT)
    ax.set(xlabel="u (normalized crop)", ylabel="v (normalized crop)", title=title)
    ax.set_xticks(CROP_TICKS, CROP_TICK_LABELS)
    ax.set_yticks(CROP_TICKS, CROP_TICK_LABELS)
    if colorbar:
        crop_colorbar(handle, ax, cube_mm)
    return handle


def hide_inner_labels(ax: Axes, *, x: bool = False, y: bool = False) -> None:
    """Drop the tick labels and axis label of `ax` on x and/or y: panels in a grid that share
    their axes with a labelled neighbour."""
    if x:
        ax.tick_params(axis="x", labelbottom=False)
        ax.set_xlabel("")
    if y:
        ax.tick_params(axis="y", labelleft=False)
        ax.set_ylabel("")


def crop_colorbar(handle: AxesImage, ax, cube_mm: float, pad: float = 0.28, mm_note: str = ""):
    """Colorbar of normalized crops beside `ax` (one Axes or several): normalized value on
    the left, millimetres from the cube centre of a `cube_mm` cube on the right (`mm_note`
    is appended to that axis' label, e.g. for a panel with another cube).

    `pad` (a fraction of the width of `ax`) leaves room between the panel and the bar for
    the bar's left tick labels and its label; a smaller one hides the label under the panel.
    """
    fig = np.ravel(ax)[0].figure
    bar = fig.colorbar(handle, ax=ax, fraction=0.046, pad=pad)
    bar.set_ticks(CROP_TICKS, labels=CROP_TICK_LABELS)  # short labels: a narrow left column
    bar.ax.yaxis.set_ticks_position("left")
    bar.ax.yaxis.set_label_position("left")
    bar.set_label("normalized depth", fontsize=8)
    half = cube_mm / 2
    mm = bar.ax.secondary_yaxis("right", functions=(lambda x: x * half, lambda y: y / half))
    mm.set_ylabel(f"mm from cube centre ({cube_mm:.0f} mm cube{mm_note})", fontsize=8)
    return bar


def heatmap_overlay(
    ax: Axes,
    heatmaps: np.ndarray,
    joint: int | None = None,
    alpha: float = 0.8,
    *,
    normalize: bool = False,
) -> AxesImage:
    """(J, Hh, Hh) heatmaps over a crop panel: one joint's, or the maximum over all joints.

    Low values are transparent so the crop stays visible underneath. The colour scale is
    0 to 1 (a target's peak); with `normalize` each joint's map is first divided by its own
    maximum (negative values clipped to 0), so the faint heatmaps of a network early in
    training show where they peak: say so in the panel's title.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if normalize:
        heatmaps = normalized_heatmaps(heatmaps)
    heat = heatmaps[joint] if joint is not None else heatmaps.max(axis=0)
    colors = plt.get_cmap("inferno")(np.linspace(0, 1, 256))
    colors[:, 3] = np.linspace(0.0, alpha, 256)
    return ax.imshow(
        heat, cmap=ListedColormap(colors), vmin=0.0, vmax=1.0, extent=CROP_EXTENT, zorder=2
    )


def heatmap_contours(
    ax: Axes, heatmaps: np.ndarray, dataset: str, level: float = 0.5, alpha: float = 0.45
) -> None:
    """Each joint's (J, Hh, Hh) heatmap as a filled region above `level` x its peak, in the
    joint's finger colour, with its outline: neighbouring joints stay apart where a maximum
    over joints would merge them into one blob."""
    names = JOINT_NAMES[layout_of(dataset)]
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if heatmaps.ndim != 3 or len(heatmaps) != len(names):
        raise ValueError(f"heatmaps must have shape ({len(names)}, H, W), got {heatmaps.shape}")
    size = heatmaps.shape[-1]
    # Pixel centres of the heatmap in normalized crop coordinates (the imshow extent's).
    centres = -1.0 + (np.arange(size) + 0.5) * 2.0 / size
    for heat, name in zip(heatmaps, names, strict=True):
        peak = heat.max()
        if peak <= 0:
            continue
        color = joint_color(name)
        ax.contourf(
            centres,
            centres,
            heat,
            levels=[level * peak, np.inf],
            colors=[color],
            alpha=alpha,
            zorder=2,
        )
        ax.contour(
            centres, centres, heat, levels=[level * peak], colors=[color], linewidths=0.8, zorder=3
        )


def normalized_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """(J, Hh, Hh) heatmaps clipped to >= 0, each divided by its own maximum (all-zero maps
    stay zero)."""
    heat = np.clip(np.asarray(heatmaps, dtype=np.float64), 0.0, None)
    peak = heat.max(axis=(-2, -1), keepdims=True)
    return np.divide(heat, peak, out=np.zeros_like(heat), where=peak > 0)


def show_joint_depths(ax: Axes, depth: np.ndarray, cube_mm: float, dataset: str) -> None:
    """Bar chart of (J,) normalized joint depths, with a millimetre axis on the right."""
    names = JOINT_NAMES[layout_of(dataset)]
    ax.bar(np.arange(len(names)), depth, color=[joint_color(n) for n in names], edgecolor="k")
    ax.axhline(0.0, color="k", linewidth=0.8)
    ax.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=7)
    ax.set(ylabel="(d - centre) / (cube / 2)", ylim=(-1, 1), title="joint depth targets")
    half = cube_mm / 2
    mm = ax.secondary_yaxis(
        "right", functions=(lambda x: np.asarray(x) * half, lambda y: np.asarray(y) / half)
    )
    mm.set_ylabel("mm from cube centre")


def zoom_to(
    ax: Axes, uv: np.ndarray, margin_px: float = 30.0, shape: tuple[int, int] | None = None
) -> None:
    """Limit pixel axes to the box around (N, 2+) points plus a margin, within an image of
    `shape` (H, W) when given."""
    uv = np.asarray(uv)
    u0, u1 = uv[:, 0].min() - margin_px, uv[:, 0].max() + margin_px
    v0, v1 = uv[:, 1].min() - margin_px, uv[:, 1].max() + margin_px
    if shape is not None:
        u0, u1 = max(u0, -0.5), min(u1, shape[1] - 0.5)
        v0, v1 = max(v0, -0.5), min(v1, shape[0] - 0.5)
    ax.set_xlim(u0, u1)
    ax.set_ylim(v1, v0)


# --------------------------------------------------------------------------------------------
# Segmentation and hand centres

CENTER_STYLES: tuple[dict[str, Any], ...] = (
    {"marker": "X", "color": "tab:red"},
    {"marker": "P", "color": "tab:orange"},
    {"marker": "*", "color": "lime"},
    {"marker": "D", "color": "tab:cyan"},
)


def show_segmentation(
    ax: Axes, depth_mm: np.ndarray, mask: np.ndarray, title: str = "", limits=None
) -> None:
    """Depth in mm with the segmented pixels tinted violet."""
    show_depth(ax, depth_mm, title=title, limits=limits)
    tint = np.zeros((*mask.shape, 4))
    tint[mask] = (0.55, 0.35, 0.95, 0.45)
    ax.imshow(tint, zorder=2)


def mark_centers(
    ax: Axes,
    centers_uvd: dict[str, np.ndarray],
    camera,
    cube_mm: float | None = None,
    legend: bool = True,
) -> None:
    """Mark each named (3,) uvd centre; with `cube_mm`, also the cube's projected box.

    The axes keep their limits: a box reaching past the image does not widen the view."""
    limits = ax.get_xlim(), ax.get_ylim()
    for (label, uvd), style in zip(centers_uvd.items(), CENTER_STYLES, strict=False):
        ax.scatter(uvd[0], uvd[1], s=90, edgecolors="black", label=label, zorder=5, **style)
        if cube_mm is not None:
            u0, v0, u1, v1 = projected_box(uvd, camera, cube_mm)
            box = Rectangle((u0, v0), u1 - u0, v1 - v0, fill=False, linestyle="--", zorder=4)
            box.set_edgecolor(style["color"])
            ax.add_patch(box)
    ax.set_xlim(limits[0])
    ax.set_ylim(limits[1])
    if legend:
        ax.legend(loc="lower left", fontsize=7, framealpha=0.8)


# --------------------------------------------------------------------------------------------
# Attention masks


def show_mask(ax: Axes, mask: np.ndarray, title: str = "") -> AxesImage:
    """(Hh, Hh) attention mask M of Eq. 3 (values in (0, 1)) on crop axes, without ticks."""
    handle = ax.imshow(mask, cmap="viridis", vmin=0, vmax=1, extent=CROP_EXTENT)
    ax.set(title=title, xticks=[], yticks=[])
    return handle
