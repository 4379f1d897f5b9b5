"""Composite pictures of the notebooks, each filling one figure from `viz`'s panels.

- `draw_view`: the views of notebook 01's explorer (raw frame, segmentation, crop, targets,
  augmentation) and `crop_figure_panels`, its training-sample panels;
- `augmentation_figure`: one crop per augmentation, on shared axes;
- `centre_crops_figure`: frames cropped at several hand centres (notebook 02), and
  `centre_crops_explorer`, one such frame with a colorbar (notebook 02's explorer);
- `prediction_grid`: what a pose network predicts, heatmaps and attention masks (notebook 03).

Crop panels in a grid label their axes on the outer panels only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.joints import JOINT_NAMES
from handpose_lib.preprocess import (
    AugmentParams,
    Crop,
    CropConfig,
    augment_crop,
    closest_object_mask,
    crop_depth,
    hand_center,
    joints_center,
    make_crop,
    projected_box,
    sample_targets,
)
from handpose_lib.viz import (
    crop_colorbar,
    draw_skeleton,
    hand_depth_limits,
    heatmap_contours,
    heatmap_overlay,
    hide_inner_labels,
    layout_of,
    mark_centers,
    show_crop,
    show_depth,
    show_joint_depths,
    show_mask,
    show_segmentation,
    zoom_to,
)

VIEWS = ("raw", "segmented", "crop", "heatmaps", "augmented")
CENTERS = {"joints": "joint centroid", "com": "CoM"}


def crop_figure_panels(
    axes, sample: dict[str, np.ndarray], dataset: str, joint: int | None = None
) -> None:
    """Three panels of one training sample: normalized crop with joints, the target heatmaps
    over the crop (each joint's region above half its peak in its finger's colour, or the
    heatmap of `joint`), and the normalized joint depths."""
    cube_mm = float(sample["cube_mm"])
    show_crop(axes[0], sample["image"][0], cube_mm, title="network input (normalized)")
    draw_skeleton(axes[0], sample["uvd_crop"], dataset, highlight=joint)
    show_crop(axes[1], sample["image"][0], cube_mm, colorbar=False)
    hh = sample["heatmaps"].shape[-1]
    if joint is None:
        heatmap_contours(axes[1], sample["heatmaps"], dataset)
        axes[1].set_title(f"target heatmaps {hh}x{hh}: each joint above half its peak")
    else:
        heat = heatmap_overlay(axes[1], sample["heatmaps"], joint)
        name = JOINT_NAMES[layout_of(dataset)][joint]
        axes[1].set_title(f"target heatmap {hh}x{hh} ({name})")
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
    center: str = "joints",
) -> None:
    """Fill `fig` with one view of `frame` (one of `VIEWS`), the selected joint circled.

    The crop views centre at `center`: "joints" (the labelled joints' centroid, where pose
    training crops before augmentation) or "com" (the refined centre of mass, the input of
    the localization network)."""
    if center not in CENTERS:
        raise ValueError(f"center {center!r}: expected one of {tuple(CENTERS)}")
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
            com_uvd = hand_center(frame.depth_mm, frame.camera, config)
            mark_centers(ax, {"hand centre (CoM, refined)": com_uvd}, frame.camera, config.cube_mm)
        draw_skeleton(ax, frame.uvd, dataset, highlight=joint)
        return
    if center == "joints":
        center_uvd = joints_center(frame.uvd, frame.camera)
    else:
        center_uvd = hand_center(frame.depth_mm, frame.camera, config)
    crop: Crop = make_crop(center_uvd, frame.camera, config.cube_mm, config.input_size)
    if view == "augmented":
        crop = augment_crop(crop, augment or AugmentParams())
    sample = sample_targets(crop_depth(frame.depth_mm, crop), frame.uvd, crop, config)
    if view == "heatmaps":
        crop_figure_panels(fig.subplots(1, 3), sample, dataset, joint)
        return
    ax = fig.add_subplot(1, 1, 1)
    title = f"crop at the {CENTERS[center]}" if view == "crop" else "augmented crop"
    if view == "augmented" and augment is not None:
        title += (
            f"\nrotation {augment.rotation_deg:+.0f} deg, scale {augment.scale:.2f}, "
            f"shift ({augment.translate[0]:+.2f}, {augment.translate[1]:+.2f}) x S"
        )
    show_crop(ax, sample["image"][0], float(sample["cube_mm"]), title=title)
    draw_skeleton(ax, sample["uvd_crop"], dataset, highlight=joint)


def augmentation_figure(samples: Mapping[str, dict], dataset: str) -> Figure:
    """One crop panel per labelled sample (label -> `preprocess.sample_targets` output), its
    joints drawn, side by side on shared axes with one colorbar for all (its mm scale is the
    first panel's cube; the label names the panels whose cube differs)."""
    fig, axes = plt.subplots(
        1, len(samples), figsize=(3.6 * len(samples) + 1.5, 4.0), squeeze=False, sharey=True
    )
    handles = []
    for k, (ax, (label, sample)) in enumerate(zip(axes[0], samples.items(), strict=True)):
        handles.append(show_crop(ax, sample["image"][0], float(sample["cube_mm"]), colorbar=False))
        ax.set_title(label, fontsize=10)
        draw_skeleton(ax, sample["uvd_crop"], dataset)
        hide_inner_labels(ax, y=k > 0)
    fig.subplots_adjust(wspace=0.08)
    cube_mm = float(next(iter(samples.values()))["cube_mm"])
    others = {
        label: float(s["cube_mm"])
        for label, s in samples.items()
        if not np.isclose(float(s["cube_mm"]), cube_mm)
    }
    note = "".join(f";\nx{c / cube_mm:.2g} in '{label}'" for label, c in others.items())
    crop_colorbar(handles[-1], axes[0], cube_mm, pad=0.06, mm_note=note)
    return fig


def centre_crops_row(
    axes: Sequence[Axes],
    frame: DepthFrame,
    crops: Mapping[str, tuple[np.ndarray, dict, float]],
    dataset: str,
    *,
    colorbar: bool = False,
) -> None:
    """One frame cropped at several centres: the frame with every centre and its cube, then
    one crop per centre with the labelled skeleton and the crop centre (magenta cross).

    `crops`: label -> (centre uvd (3,), `sample_targets` output of the crop there, 3D error
    of that centre in mm).
    """
    cube_mm = float(next(iter(crops.values()))[1]["cube_mm"])
    show_depth(
        axes[0],
        frame.depth_mm,
        limits=hand_depth_limits(frame.uvd),
        title=f"{frame.name}\ncentres and their cubes",
        colorbar=False,
    )
    axes[0].title.set_fontsize(10)
    draw_skeleton(axes[0], frame.uvd, dataset)
    centres = {label: centre for label, (centre, _, _) in crops.items()}
    mark_centers(axes[0], centres, frame.camera, cube_mm, legend=False)
    # Zoom to the joints and every cube, so no cube is cut by the panel's edge.
    boxes = [projected_box(c, frame.camera, cube_mm) for c in centres.values()]
    corners = np.concatenate([frame.uvd[:, :2], np.reshape(boxes, (-1, 2))])
    zoom_to(axes[0], corners, margin_px=6, shape=frame.depth_mm.shape)
    handles = []
    for k, (ax, (label, (_, sample, error_mm))) in enumerate(
        zip(axes[1:], crops.items(), strict=True)
    ):
        handles.append(show_crop(ax, sample["image"][0], cube_mm, colorbar=False))
        ax.set_title(f"crop at {label}: {error_mm:.1f} mm off", fontsize=10)
        draw_skeleton(ax, sample["uvd_crop"], dataset)
        ax.plot(0, 0, "+", color="magenta", markersize=14, markeredgewidth=2)
        hide_inner_labels(ax, y=k > 0)
    if colorbar:
        crop_colorbar(handles[-1], list(axes[1:]), cube_mm, pad=0.05)


def centre_crops_explorer(
    frame: DepthFrame,
    crops: Mapping[str, tuple[np.ndarray, dict, float]],
    dataset: str,
) -> Figure:
    """One `centre_crops_row` as a figure of its own (notebook 02's explorer): the crops'
    colorbar at the right and the centres' legend in the frame panel. Constrained layout
    keeps the colorbar's two tick columns off the last crop."""
    fig, axes = plt.subplots(
        1, 1 + len(crops), figsize=(5.0 * (1 + len(crops)), 4.6), layout="constrained"
    )
    centre_crops_row(axes, frame, crops, dataset, colorbar=True)
    axes[0].legend(loc="lower left", fontsize=7, framealpha=0.8)
    return fig


def centre_crops_figure(
    rows: Sequence[tuple[DepthFrame, Mapping[str, tuple[np.ndarray, dict, float]]]],
    dataset: str,
) -> Figure:
    """`centre_crops_row` for each (frame, crops) row; x labels on the bottom row only, the
    centres' legend in the first panel."""
    n_cols = 1 + len(rows[0][1])
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(4.3 * n_cols, 4.0 * len(rows)), squeeze=False
    )
    for r, (row, (frame, crops)) in enumerate(zip(axes, rows, strict=True)):
        centre_crops_row(row, frame, crops, dataset)
        for ax in row[1:]:  # crops share their axes; each frame panel has its own zoom
            hide_inner_labels(ax, x=r < len(rows) - 1)
    axes[0, 0].legend(loc="lower left", fontsize=7, framealpha=0.8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# What a pose network predicts


def heatmap_peak_range(heatmaps: np.ndarray) -> str:
    """'0.05-0.31': the smallest and largest of the J per-joint maxima of (J, Hh, Hh) maps."""
    peaks = np.asarray(heatmaps).max(axis=(-2, -1))
    return f"{peaks.min():.2f}-{peaks.max():.2f}"


def prediction_grid(
    rows: Sequence[tuple[str, dict, dict]],
    dataset: str,
    channels: Sequence[int] = (),
    stack: str = "last stack",
) -> Figure:
    """One row per frame: input crop with the predicted skeleton, the target heatmaps, the
    predicted heatmaps (each joint scaled to its own maximum; the title gives the range of
    the raw peaks), and, when the network has them, the channel-mean attention mask and the
    masks of `channels`.

    rows: (title, item, out) with item a dataset sample ('image' (1, S, S), 'heatmaps'
    (J, Hh, Hh), 'cube_mm') and out the network's outputs as numpy ('uvd_crop' (J, 3),
    'heatmaps' (J, Hh, Hh), optionally 'attention' (C, Hh, Hh)).
    """
    has_mask = all("attention" in out for _, _, out in rows)
    n_cols = 3 + ((1 + len(channels)) if has_mask else 0)
    fig, axes = plt.subplots(
        len(rows), n_cols, figsize=(3.4 * n_cols, 3.5 * len(rows)), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    handle = None
    for r, (row, (title, item, out)) in enumerate(zip(axes, rows, strict=True)):
        cube_mm = float(item["cube_mm"])
        image = item["image"][0]
        show_crop(row[0], image, cube_mm, title=f"{title}: input, prediction", colorbar=False)
        draw_skeleton(row[0], out["uvd_crop"], dataset)
        show_crop(row[1], image, cube_mm, title="target heatmaps", colorbar=False)
        heatmap_overlay(row[1], item["heatmaps"])
        peaks = heatmap_peak_range(out["heatmaps"])
        show_crop(row[2], image, cube_mm, colorbar=False)
        row[2].set_title(f"predicted ({stack}), each joint\nscaled to its max (peaks {peaks})")
        heatmap_overlay(row[2], out["heatmaps"], normalize=True)
        for c, ax in enumerate(row[:3]):
            hide_inner_labels(ax, x=r < len(rows) - 1, y=c > 0)
        if has_mask:
            attention = out["attention"]
            handle = show_mask(row[3], attention.mean(axis=0), "attention: mean of C masks")
            for ax, c in zip(row[4:], channels, strict=True):
                show_mask(ax, attention[c], f"attention: channel {c}")
    if handle is not None:
        fig.colorbar(handle, ax=axes[:, 3:], fraction=0.02, pad=0.01, label="mask value M (Eq. 3)")
    return fig


def spread_channels(attention: np.ndarray, count: int = 3) -> np.ndarray:
    """The `count` channels of (F, C, Hh, Hh) masks of F frames whose masks vary most over the
    image (mean over frames of each mask's spatial standard deviation)."""
    spread = np.asarray(attention).std(axis=(-2, -1)).mean(axis=0)
    return np.argsort(spread)[::-1][:count]
