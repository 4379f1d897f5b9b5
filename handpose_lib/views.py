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
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from handpose_lib.ablation import AblationRun, pooled
from handpose_lib.ablation_verdict import PAPER_ORDER, VARIANT_LABELS
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.evaluate import MethodResult
from handpose_lib.joints import JOINT_NAMES
from handpose_lib.plots import (
    legend_outside,
    per_joint_figure,
    plot_floors_per_joint,
    plot_floors_success,
    plot_per_joint_errors,
    plot_seed_bands,
    plot_success_curves,
    success_figure,
    validation_by_step_figure,
)
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
    CROP_EXTENT,
    crop_colorbar,
    draw_skeleton,
    hand_depth_limits,
    heatmap_contours,
    heatmap_overlay,
    hide_inner_labels,
    layout_of,
    mark_centers,
    normalized_heatmaps,
    show_crop,
    show_depth,
    show_joint_depths,
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


def mark_truth(ax: Axes, uvd_crop: np.ndarray) -> None:
    """The true joints of a crop as white crosses (beside a predicted skeleton)."""
    uvd_crop = np.asarray(uvd_crop)
    ax.scatter(
        uvd_crop[:, 0],
        uvd_crop[:, 1],
        marker="+",
        s=30,
        c="white",
        linewidths=1.0,
        zorder=4,
        label="truth",
    )


def mask_over_crop(
    ax: Axes, image: np.ndarray, mask: np.ndarray, cube_mm: float, title: str = ""
) -> AxesImage:
    """One attention mask M (Hh, Hh) of Eq. 3, semi-transparent over the (S, S) crop it
    weights, so a reader sees which parts of the hand reach the depth regressor."""
    show_crop(ax, image, cube_mm, title=title, colorbar=False)
    handle = ax.imshow(
        mask, cmap="viridis", vmin=0, vmax=1, alpha=0.6, extent=CROP_EXTENT, zorder=2
    )
    ax.set(xticks=[], yticks=[])
    return handle


def prediction_grid(
    rows: Sequence[tuple[str, dict, dict]],
    dataset: str,
    channels: Sequence[int] = (),
    stack: str = "last stack",
) -> Figure:
    """One row per frame: input crop with the predicted skeleton and the true joints (white
    crosses), the target heatmaps, the predicted heatmaps (each joint scaled to its own
    maximum; the title gives the range of the raw peaks), and, when the network has them, the
    attention masks of `channels` over the crop.

    rows: (title, item, out) with item a dataset sample ('image' (1, S, S), 'heatmaps'
    (J, Hh, Hh), 'uvd_crop' (J, 3), 'cube_mm') and out the network's outputs as numpy
    ('uvd_crop' (J, 3), 'heatmaps' (J, Hh, Hh), optionally 'attention' (C, Hh, Hh)).
    """
    has_mask = all("attention" in out for _, _, out in rows) and len(channels) > 0
    n_cols = 3 + (len(channels) if has_mask else 0)
    fig, axes = plt.subplots(
        len(rows),
        n_cols,
        figsize=(3.4 * n_cols, 3.5 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    handle = None
    for r, (row, (title, item, out)) in enumerate(zip(axes, rows, strict=True)):
        cube_mm = float(item["cube_mm"])
        image = item["image"][0]
        show_crop(row[0], image, cube_mm, title=f"{title}: prediction, truth (+)", colorbar=False)
        draw_skeleton(row[0], out["uvd_crop"], dataset)
        mark_truth(row[0], item["uvd_crop"])
        show_crop(row[1], image, cube_mm, title="target heatmaps", colorbar=False)
        heatmap_overlay(row[1], item["heatmaps"])
        peaks = heatmap_peak_range(out["heatmaps"])
        show_crop(row[2], image, cube_mm, colorbar=False)
        row[2].set_title(f"predicted ({stack}), each joint\nscaled to its max (peaks {peaks})")
        heatmap_overlay(row[2], out["heatmaps"], normalize=True)
        for c, ax in enumerate(row[:3]):
            hide_inner_labels(ax, x=r < len(rows) - 1, y=c > 0)
        if has_mask:
            for ax, c in zip(row[3:], channels, strict=True):
                handle = mask_over_crop(
                    ax, image, out["attention"][c], cube_mm, f"mask M, channel {c}"
                )
    if handle is not None:
        fig.colorbar(handle, ax=axes[:, 3:], fraction=0.02, pad=0.01, label="mask value M (Eq. 3)")
    return fig


def pose_explorer_figure(
    item: dict, out: dict, joint: int, error_mm: float, dataset: str, channel: int
) -> Figure:
    """Notebook 03's explorer for one validation frame and joint: the crop with the true and
    the predicted skeleton (the joint circled, its 3D error in the title), the predicted
    heatmap of the joint scaled to its maximum with the target's contours, and one attention
    mask over the crop."""
    names = JOINT_NAMES[layout_of(dataset)]
    cube_mm, image = float(item["cube_mm"]), item["image"][0]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4), layout="constrained")
    for ax, uvd, title in (
        (axes[0], item["uvd_crop"], "ground truth"),
        (axes[1], out["uvd_crop"], f"prediction: {names[joint]} {error_mm:.1f} mm off"),
    ):
        show_crop(ax, image, cube_mm, title=title, colorbar=False)
        draw_skeleton(ax, uvd, dataset, highlight=joint)
    peak = out["heatmaps"][joint].max()
    show_crop(
        axes[2],
        image,
        cube_mm,
        colorbar=False,
        title=f"predicted heatmap, {names[joint]}\nscaled to its max (peak {peak:.2f})",
    )
    heatmap_overlay(axes[2], out["heatmaps"], joint, normalize=True)
    axes[2].contour(
        item["heatmaps"][joint],
        levels=[0.25, 0.75],
        colors="white",
        extent=CROP_EXTENT,
        origin="upper",
        linewidths=1,
    )
    if "attention" in out:
        handle = mask_over_crop(
            axes[3],
            image,
            out["attention"][channel],
            cube_mm,
            f"attention mask M, channel {channel}",
        )
        fig.colorbar(handle, ax=axes[3], fraction=0.046, pad=0.02)
    else:
        axes[3].set_axis_off()
    return fig


def spread_channels(attention: np.ndarray, count: int = 3) -> np.ndarray:
    """The `count` channels of (F, C, Hh, Hh) masks of F frames whose masks vary most over the
    image (mean over frames of each mask's spatial standard deviation)."""
    spread = np.asarray(attention).std(axis=(-2, -1)).mean(axis=0)
    return np.argsort(spread)[::-1][:count]


# --------------------------------------------------------------------------------------------
# The self-comparison (notebook 04)


def self_comparison_figures(
    by_variant: Mapping[str, Sequence[MethodResult]],
    histories: Mapping[str, Sequence[pd.DataFrame]],
    floors: Sequence[MethodResult],
    joint_names: Sequence[str],
    where: str,
    steps_per_epoch: int | None,
) -> dict[str, Figure]:
    """Fig. 3 (a) per-joint errors and (b) success frames of the variants (seeds pooled,
    the seeds' range as bands in (b)), and the validation error against training step, each
    with the constant-pose floors; `where` (what they were trained and tested on) closes each
    title. Keys are the figure names of notebook 04."""
    order = [v for v in PAPER_ORDER if v in by_variant]
    pooled_results = [pooled(by_variant[v], v) for v in order]
    per_joint = per_joint_figure(
        pooled_results,
        joint_names,
        f"Fig. 3 (a) self-comparison: per-joint mean error\n{where}",
        floors=floors,
    )
    success = success_figure(
        pooled_results,
        kind="max",
        title=f"Fig. 3 (b) self-comparison: success frames\n{where}",
        seed_bands={v: by_variant[v] for v in order},
        floors=floors,
    )
    by_step = validation_by_step_figure(
        {VARIANT_LABELS[v]: histories[v] for v in order},
        steps_per_epoch=steps_per_epoch,
        title=f"Validation error during training\n{where}",
        floors=[(f.name, f.mean_error_mm) for f in floors],
    )
    return {
        "fig3a_self_comparison_per_joint_error": per_joint,
        "fig3b_self_comparison_success_frames": success,
        "self_comparison_validation_by_step": by_step,
    }


def self_comparison_explorer(
    runs: Sequence[AblationRun],
    chosen: Sequence[str],
    kind: str,
    seed: int | str,
    floors: Sequence[MethodResult],
    joint_names: Sequence[str],
) -> Figure:
    """Notebook 04's explorer: the chosen variants' per-joint errors and success curves
    (`kind`: max, mean or joints), one seed's or all seeds pooled ("all (pooled)", with the
    seeds' range as bands), beside the floors."""
    order = [v for v in PAPER_ORDER if v in chosen] or [runs[0].variant]
    by_variant = {v: [r.result for r in runs if r.variant == v] for v in order}
    if seed == "all (pooled)":
        picked = [pooled(by_variant[v], v) for v in order]
        bands = by_variant
    else:
        picked = [r.result for r in runs if r.variant in order and r.seed == seed]
        bands = {}
    fig, axes = plt.subplots(1, 2, figsize=(16, 4.2), width_ratios=(1.5, 1), layout="constrained")
    plot_per_joint_errors(axes[0], picked, joint_names)
    plot_floors_per_joint(axes[0], floors)
    plot_success_curves(axes[1], picked, kind)
    plot_seed_bands(axes[1], bands, kind)
    plot_floors_success(axes[1], floors, kind)
    legend_outside(axes[1])
    return fig


def pipeline_figure(
    frame: DepthFrame, item: dict, out: dict, dataset: str, channel: int, centre_label: str
) -> Figure:
    """The method in five panels, for the README's first screen: the depth frame with the
    crop's cube, the normalized crop (network input), the predicted heatmaps (each joint above
    half its peak), one attention mask of Eq. 3 over the crop, and the predicted skeleton with
    the true joints.

    item: a validation sample ('image', 'uvd_crop', 'center_uvd', 'cube_mm'); out: the
    network's outputs as numpy ('heatmaps' (J, Hh, Hh), 'uvd_crop', 'attention')."""
    cube_mm, image = float(item["cube_mm"]), item["image"][0]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.2), layout="constrained")
    show_depth(
        axes[0],
        frame.depth_mm,
        limits=hand_depth_limits(frame.uvd),
        colorbar=False,
        title=f"1. depth frame, cube at the {centre_label}",
    )
    mark_centers(
        axes[0], {centre_label: np.asarray(item["center_uvd"])}, frame.camera, cube_mm, legend=False
    )
    box = projected_box(np.asarray(item["center_uvd"]), frame.camera, cube_mm)
    zoom_to(axes[0], np.reshape(box, (2, 2)), margin_px=10, shape=frame.depth_mm.shape)
    show_crop(axes[1], image, cube_mm, title="2. normalized crop (input)", colorbar=False)
    show_crop(axes[2], image, cube_mm, title="3. predicted heatmaps (Eq. 2)", colorbar=False)
    heatmap_contours(axes[2], normalized_heatmaps(out["heatmaps"]), dataset)
    mask_over_crop(
        axes[3],
        image,
        out["attention"][channel],
        cube_mm,
        f"4. attention mask M, channel {channel} (Eq. 3)",
    )
    show_crop(axes[4], image, cube_mm, title="5. 3D joints: prediction, truth (+)", colorbar=False)
    draw_skeleton(axes[4], out["uvd_crop"], dataset)
    mark_truth(axes[4], item["uvd_crop"])
    for ax in axes[1:]:
        ax.set(xticks=[], yticks=[], xlabel="", ylabel="")
    return fig
