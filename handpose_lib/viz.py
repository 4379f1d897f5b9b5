"""Pictures of the input pipeline: depth frames, skeletons, crops, heatmaps, hand centres.

Full-frame panels use image pixels (u to the right, v down). Crop panels use normalized crop
coordinates, -1 at the left/top edge and +1 at the right/bottom edge (the package's `uvd_crop`
convention), so joints, crops and heatmaps of any size share one set of axes. Depth is shown
in millimetres; a normalized crop gets a colorbar in both units (normalized value and mm from
the cube centre).

Also holds two small measurements the pictures are about (centre offsets along the hand, the
image-to-joint gap of a crop) and the notebook profiles (`NotebookProfile`): how large the
crops and how many frames a notebook uses for `smoke`, `cpu` and `paper`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.synthetic import PARENT as ICVL_PARENT
from handpose_lib.joints import JOINT_NAMES
from handpose_lib.paths import ENV_HEADLESS
from handpose_lib.preprocess import (
    AugmentParams,
    Crop,
    CropConfig,
    augment_crop,
    closest_object_mask,
    crop_depth,
    hand_center,
    make_crop,
    projected_box,
    sample_targets,
)

# --------------------------------------------------------------------------------------------
# Profiles

ENV_PROFILE = "HANDPOSE_PROFILE"


@dataclass(frozen=True)
class NotebookProfile:
    """Sizes a notebook runs at; a profile changes sizes only, never the method.

    input_size:    S, side of the network input crop (pixels).
    heatmap_size:  side of the target heatmaps, S / 2 (the hourglass output resolution).
    num_frames:    frames a notebook measures over (e.g. the centre-of-mass error).
    """

    name: str
    input_size: int
    heatmap_size: int
    num_frames: int

    def crop_config(self, dataset: str) -> CropConfig:
        """The paper's crop config for `dataset` ("synthetic" uses ICVL's) at this size."""
        return CropConfig.for_dataset(
            layout_of(dataset), input_size=self.input_size, heatmap_size=self.heatmap_size
        )


PROFILES: dict[str, NotebookProfile] = {
    "smoke": NotebookProfile("smoke", input_size=32, heatmap_size=16, num_frames=20),
    "cpu": NotebookProfile("cpu", input_size=64, heatmap_size=32, num_frames=200),
    "paper": NotebookProfile("paper", input_size=128, heatmap_size=64, num_frames=1000),
}


def resolve_profile(name: str) -> NotebookProfile:
    """The profile `name`, unless $HANDPOSE_PROFILE is set: then that one (tests set "smoke")."""
    chosen = os.environ.get(ENV_PROFILE) or name
    if chosen not in PROFILES:
        origin = f"${ENV_PROFILE}" if os.environ.get(ENV_PROFILE) else "PROFILE"
        raise ValueError(f"{origin}={chosen!r}: expected one of {tuple(PROFILES)}")
    return PROFILES[chosen]


def layout_of(dataset: str) -> str:
    """Joint layout and camera of a dataset name: "synthetic" frames use ICVL's."""
    layout = "icvl" if dataset == "synthetic" else dataset
    if layout not in JOINT_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}: expected synthetic, icvl or nyu")
    return layout


# --------------------------------------------------------------------------------------------
# Skeletons

# NYU's 14 evaluation joints (joints.NYU_JOINT_NAMES): every finger and both wrist points
# hang off the Palm (13); the thumb runs Palm -> Thumb.R1 (10) -> Thumb.R2 (9) -> Thumb.T (8).
_NYU_PARENT = (1, 13, 3, 13, 5, 13, 7, 13, 9, 10, 13, 13, 13, -1)

SKELETON_EDGES: dict[str, tuple[tuple[int, int], ...]] = {
    layout: tuple((p, j) for j, p in enumerate(parents) if p >= 0)
    for layout, parents in (("icvl", ICVL_PARENT), ("nyu", _NYU_PARENT))
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

    `highlight` circles one joint; `labels` writes every joint's name beside it. Over an
    image the axes keep their limits: joints outside a crop are not shown.
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
        for (u, v), name in zip(uv[:, :2], names, strict=True):
            ax.annotate(
                name,
                (u, v),
                xytext=(4, 2),
                textcoords="offset points",
                fontsize=7,
                color="white",
                path_effects=[patheffects.withStroke(linewidth=2, foreground="black")],
                zorder=5,
                annotation_clip=True,
            )
    if limits is not None:
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])


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
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="depth (mm)")
    return image


CROP_EXTENT = (-1.0, 1.0, 1.0, -1.0)  # imshow extent in normalized crop coordinates


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
    if colorbar:
        crop_colorbar(handle, ax, cube_mm)
    return handle


def crop_colorbar(handle: AxesImage, ax, cube_mm: float, pad: float = 0.16):
    """Colorbar of normalized crops beside `ax` (one Axes or several): normalized value on
    the left, millimetres from the cube centre on the right."""
    fig = np.ravel(ax)[0].figure
    bar = fig.colorbar(handle, ax=ax, fraction=0.046, pad=pad)
    bar.ax.yaxis.set_ticks_position("left")
    bar.ax.yaxis.set_label_position("left")
    bar.set_label("normalized depth", fontsize=8)
    half = cube_mm / 2
    mm = bar.ax.secondary_yaxis("right", functions=(lambda x: x * half, lambda y: y / half))
    mm.set_ylabel(f"mm from cube centre ({cube_mm:.0f} mm cube)", fontsize=8)
    return bar


def heatmap_overlay(
    ax: Axes, heatmaps: np.ndarray, joint: int | None = None, alpha: float = 0.8
) -> AxesImage:
    """(J, Hh, Hh) heatmaps over a crop panel: one joint's, or the maximum over all joints.

    Low values are transparent so the crop stays visible underneath.
    """
    heat = heatmaps[joint] if joint is not None else heatmaps.max(axis=0)
    colors = plt.get_cmap("inferno")(np.linspace(0, 1, 256))
    colors[:, 3] = np.linspace(0.0, alpha, 256)
    return ax.imshow(
        heat, cmap=ListedColormap(colors), vmin=0.0, vmax=1.0, extent=CROP_EXTENT, zorder=2
    )


def show_joint_depths(ax: Axes, depth: np.ndarray, cube_mm: float, dataset: str) -> None:
    """Bar chart of (J,) normalized joint depths, with a millimetre axis on the right."""
    names = JOINT_NAMES[layout_of(dataset)]
    ax.bar(np.arange(len(names)), depth, color=[joint_color(n) for n in names], edgecolor="k")
    ax.axhline(0.0, color="k", linewidth=0.8)
    ax.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=7)
    ax.set(ylabel="(d - centre) / (cube / 2)", ylim=(-1, 1), title="joint depth targets")
    half = cube_mm / 2
    mm = ax.secondary_yaxis("right", functions=(lambda x: x * half, lambda y: y / half))
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

CENTER_STYLES = (
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


def offsets_along_hand(
    center_xyz: np.ndarray, joints_xyz: np.ndarray, dataset: str
) -> dict[str, np.ndarray]:
    """Split centre errors (N, 3) along each hand's own axes (camera-space mm).

    center_xyz (N, 3) estimated centres; joints_xyz (N, J, 3) labelled joints; the reference
    centre is the joint centroid. Returns (N,) arrays: 'toward_wrist' (signed, along the
    Mid.R -> Palm direction projected on the image plane, > 0 = displaced toward the wrist
    and forearm), 'across' (signed, image plane, perpendicular to it), 'depth' (signed z) and
    'total' (3D norm).
    """
    names = JOINT_NAMES[layout_of(dataset)]
    palm, mid_root = names.index("Palm"), names.index("Mid.R")
    joints_xyz = np.asarray(joints_xyz, dtype=np.float64)
    offset = np.asarray(center_xyz, dtype=np.float64) - joints_xyz.mean(axis=1)
    axis = joints_xyz[:, palm, :2] - joints_xyz[:, mid_root, :2]
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    toward = np.einsum("ni,ni->n", offset[:, :2], axis)
    across = offset[:, 0] * -axis[:, 1] + offset[:, 1] * axis[:, 0]
    return {
        "toward_wrist": toward,
        "across": across,
        "depth": offset[:, 2],
        "total": np.linalg.norm(offset, axis=1),
    }


def surface_gap_mm(sample: dict[str, np.ndarray]) -> float:
    """Median |crop depth at each joint's pixel - joint depth| in mm for one sample.

    Joints sit a finger's radius behind the visible surface, so this is small (about 10 mm)
    when image and joints are aligned; when a transform moved one without the other, joints
    fall on the forearm or the background and it grows to 50-150 mm. A check that
    augmentation keeps them consistent.
    """
    image = sample["image"][0]
    size = image.shape[-1]
    xy = np.rint((np.asarray(sample["uvd_crop"])[:, :2] + 1.0) / 2.0 * size - 0.5).astype(int)
    xy = np.clip(xy, 0, size - 1)
    gap = np.abs(image[xy[:, 1], xy[:, 0]] - np.asarray(sample["depth"]))
    return float(np.median(gap) * float(sample["cube_mm"]) / 2)


def plot_error_histograms(ax: Axes, errors_mm: dict[str, np.ndarray], bins: int = 25) -> None:
    """Overlaid histograms of (N,) errors in mm, one per label, with the mean in the legend.

    The range ends at the 99th percentile; the last bin collects the tail beyond it."""
    arrays = {label: np.asarray(e, dtype=np.float64) for label, e in errors_mm.items()}
    if not arrays or any(a.size == 0 for a in arrays.values()):
        raise ValueError("plot_error_histograms needs at least one non-empty error array")
    top = max(float(np.percentile(a, 99)) for a in arrays.values())
    edges = np.linspace(0.0, max(top, 1.0), bins + 1)
    highest = 1.0
    for (label, errors), style in zip(arrays.items(), CENTER_STYLES, strict=False):
        counts, _, _ = ax.hist(
            np.clip(errors, 0, edges[-1]),
            bins=edges,
            histtype="step",
            linewidth=2,
            color=style["color"],
            label=f"{label}: mean {errors.mean():.1f} mm",
        )
        highest = max(highest, float(counts.max()))
    ax.set_ylim(0, highest * 1.3)  # room for the legend above the bars
    ax.set(xlabel="3D distance to the joint centroid (mm)", ylabel="frames")
    ax.legend(fontsize=7)


# --------------------------------------------------------------------------------------------
# Composite views (figures of notebook 01 and its explorer)

VIEWS = ("raw", "segmented", "crop", "heatmaps", "augmented")


def crop_figure_panels(
    axes, sample: dict[str, np.ndarray], dataset: str, joint: int | None = None
) -> None:
    """Three panels of one training sample: normalized crop with joints, the target heatmaps
    over the crop (all joints, or `joint`), and the normalized joint depths."""
    cube_mm = float(sample["cube_mm"])
    show_crop(axes[0], sample["image"][0], cube_mm, title="network input (normalized)")
    draw_skeleton(axes[0], sample["uvd_crop"], dataset, highlight=joint)
    show_crop(axes[1], sample["image"][0], cube_mm, colorbar=False)
    heat = heatmap_overlay(axes[1], sample["heatmaps"], joint)
    hh = sample["heatmaps"].shape[-1]
    which = "max over joints" if joint is None else JOINT_NAMES[layout_of(dataset)][joint]
    axes[1].set_title(f"target heatmaps {hh}x{hh} ({which})")
    axes[1].figure.colorbar(heat, ax=axes[1], fraction=0.046, pad=0.02, label="heatmap value")
    show_joint_depths(axes[2], sample["depth"], cube_mm, dataset)


def draw_view(
    fig: Figure,
    frame: DepthFrame,
    view: str,
    config: CropConfig,
    dataset: str,
    *,
    joint: int = 0,
    augment: AugmentParams | None = None,
) -> None:
    """Fill `fig` with one view of `frame` (one of `VIEWS`), the selected joint circled."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r}: expected one of {VIEWS}")
    fig.clear()
    if view in ("raw", "segmented"):
        ax = fig.add_subplot(1, 1, 1)
        if view == "raw":
            show_depth(ax, frame.depth_mm, title=f"{frame.name}: depth and joints")
        else:
            mask = closest_object_mask(
                frame.depth_mm, config.segment_band_mm, config.min_depth_mm, config.max_depth_mm
            )
            show_segmentation(ax, frame.depth_mm, mask, f"{frame.name}: depth band and centre")
            center = hand_center(frame.depth_mm, frame.camera, config)
            mark_centers(ax, {"hand centre (CoM, refined)": center}, frame.camera, config.cube_mm)
        draw_skeleton(ax, frame.uvd, dataset, highlight=joint)
        return
    center = hand_center(frame.depth_mm, frame.camera, config)
    crop: Crop = make_crop(center, frame.camera, config.cube_mm, config.input_size)
    if view == "augmented":
        crop = augment_crop(crop, augment or AugmentParams())
    sample = sample_targets(crop_depth(frame.depth_mm, crop), frame.uvd, crop, config)
    if view == "heatmaps":
        crop_figure_panels(fig.subplots(1, 3), sample, dataset, joint)
        return
    ax = fig.add_subplot(1, 1, 1)
    title = "crop at the CoM" if view == "crop" else "augmented crop"
    if view == "augmented" and augment is not None:
        title += (
            f"\nrotation {augment.rotation_deg:+.0f} deg, scale {augment.scale:.2f}, "
            f"shift ({augment.translate[0]:+.2f}, {augment.translate[1]:+.2f}) x S"
        )
    show_crop(ax, sample["image"][0], float(sample["cube_mm"]), title=title)
    draw_skeleton(ax, sample["uvd_crop"], dataset, highlight=joint)


def explore(
    view: Callable[..., None], defaults: dict, controls: Callable[[], dict] | None = None
) -> None:
    """An ipywidgets explorer over `view`, or one static call when run headless.

    `defaults` are the keyword arguments of the static call; `controls()` builds the widgets
    (keyword -> widget) and is only called in an interactive session. The reproduction
    runner and the test suite set HANDPOSE_HEADLESS=1: creating widgets in a kernel that no
    front end listens to can stall the kernel (seen with papermill), and nothing could use
    them anyway.
    """
    if os.environ.get(ENV_HEADLESS) or controls is None:
        view(**defaults)
        return
    import ipywidgets

    ipywidgets.interact(view, **controls())
