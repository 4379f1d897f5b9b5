"""Pictures: skeletons, crop/heatmap alignment, centres, every explorer view, and the composite
figures of the notebooks (no tick labels colliding between panels, faint heatmaps made visible)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from handpose_lib import views, viz
from handpose_lib.camera import ICVL
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.joints import JOINT_NAMES
from handpose_lib.preprocess import (
    AugmentParams,
    CropConfig,
    augment_crop,
    crop_depth,
    gaussian_heatmaps,
    hand_center,
    make_crop,
    projected_box,
    sample_targets,
)

SMALL = CropConfig(input_size=32, heatmap_size=16)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def frame():
    return SyntheticSource(1, seed=3)[0]


@pytest.fixture(scope="module")
def sample(frame):
    crop = make_crop(hand_center(frame.depth_mm, frame.camera, SMALL), ICVL, SMALL.cube_mm, 32)
    return sample_targets(crop_depth(frame.depth_mm, crop), frame.uvd, crop, SMALL)


# ------------------------------------------------------------------------------------ layouts


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'msra'"):
        viz.layout_of("msra")


# ----------------------------------------------------------------------------------- skeletons


@pytest.mark.parametrize("layout", ["icvl", "nyu"])
def test_skeleton_is_a_tree_over_all_joints_rooted_at_the_palm(layout):
    names = JOINT_NAMES[layout]
    edges = viz.SKELETON_EDGES[layout]
    assert len(edges) == len(names) - 1
    parent = {child: p for p, child in edges}
    for joint in range(len(names)):  # every joint reaches the palm without a cycle
        seen = set()
        while joint in parent:
            assert joint not in seen
            seen.add(joint)
            joint = parent[joint]
        assert names[joint] == "Palm"
    for p, child in edges:  # bones stay within one finger, or start at the palm
        assert names[p] == "Palm" or names[p].split(".")[0] == names[child].split(".")[0]


def test_nyu_thumb_runs_from_the_palm_to_the_tip():
    names = JOINT_NAMES["nyu"]
    parent = {child: p for p, child in viz.SKELETON_EDGES["nyu"]}
    chain = [names.index("Thumb.T")]
    while chain[-1] in parent:
        chain.append(parent[chain[-1]])
    assert [names[j] for j in chain] == ["Thumb.T", "Thumb.R2", "Thumb.R1", "Palm"]


def test_draw_skeleton_draws_every_bone_and_checks_the_shape(frame):
    _, ax = plt.subplots()
    viz.draw_skeleton(ax, frame.uvd, "synthetic", highlight=3, labels=True)
    assert len(ax.lines) == len(viz.SKELETON_EDGES["icvl"])
    assert len(ax.texts) == 16
    with pytest.raises(ValueError, match=r"\(14, 2 or 3\) for nyu"):
        viz.draw_skeleton(ax, frame.uvd, "nyu")


# ------------------------------------------------------------------------- images and crops


def test_depth_limits_ignore_missing_pixels():
    depth = np.zeros((10, 10), dtype=np.float32)
    assert viz.depth_limits(depth) == (0.0, 1.0)
    depth[2:5, 2:5] = 400.0
    assert viz.depth_limits(depth) == (400.0, 401.0)
    uvd = np.array([[1.0, 2.0, 300.0], [3.0, 4.0, 350.0]])
    assert viz.hand_depth_limits(uvd, margin_mm=10) == (290.0, 360.0)


def test_show_depth_masks_missing_pixels_and_labels_mm():
    _, ax = plt.subplots()
    depth = np.full((6, 8), 500.0, dtype=np.float32)
    depth[0, 0] = 0.0
    image = viz.show_depth(ax, depth)
    assert image.get_array().mask[0, 0]
    assert not image.get_array().mask[1, 1]
    assert ax.figure.axes[-1].get_ylabel() == "depth (mm)"


def pixel_centres(image, size):
    """Data coordinates of the pixel centres of an imshow'ed (size, size) array."""
    left, right, bottom, top = image.get_extent()
    return left + (np.arange(size) + 0.5) * (right - left) / size, top + (np.arange(size) + 0.5) * (
        bottom - top
    ) / size


@pytest.mark.parametrize("size", [8, 16, 64])
def test_heatmap_overlay_peaks_where_the_joint_is_drawn(size):
    """Crop panels share normalized axes: a target heatmap of any size peaks at the joint's
    plotted position, within half a heatmap pixel."""
    uv = np.array([[0.3, -0.55], [-0.8, 0.1]])
    heat = gaussian_heatmaps(uv, size, sigma=1.0)
    _, ax = plt.subplots()
    for joint in range(2):
        image = viz.heatmap_overlay(ax, heat, joint)
        xs, ys = pixel_centres(image, size)
        row, col = np.unravel_index(np.argmax(image.get_array()), (size, size))
        assert abs(xs[col] - uv[joint, 0]) <= 1 / size + 1e-9
        assert abs(ys[row] - uv[joint, 1]) <= 1 / size + 1e-9


def test_show_crop_uses_the_crop_pixel_convention(sample):
    _, ax = plt.subplots()
    image = viz.show_crop(ax, sample["image"][0], float(sample["cube_mm"]))
    xs, _ = pixel_centres(image, 32)
    np.testing.assert_allclose(xs, (np.arange(32) + 0.5) / 32 * 2 - 1)  # preprocess convention
    bar_axes = ax.figure.axes[-1]
    assert bar_axes.get_ylabel() == "normalized depth"
    mm_axis = bar_axes.child_axes[0]
    assert "mm from cube centre (250 mm cube)" in mm_axis.get_ylabel()


def test_zoom_stays_inside_the_image():
    _, ax = plt.subplots()
    viz.zoom_to(ax, np.array([[2.0, 100.0], [50.0, 120.0]]), margin_px=10, shape=(240, 320))
    assert ax.get_xlim() == (-0.5, 60.0)
    assert ax.get_ylim() == (130.0, 90.0)  # v grows downward


# --------------------------------------------------------------------------------- centres


def test_mark_centers_draws_the_cube_box_of_each_centre():
    _, ax = plt.subplots()
    centers = {"a": np.array([100.0, 80.0, 400.0]), "b": np.array([150.0, 90.0, 500.0])}
    viz.mark_centers(ax, centers, ICVL, cube_mm=250.0)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 2
    u0, v0, u1, _v1 = projected_box(centers["b"], ICVL, 250.0)
    assert boxes[1].get_xy() == (u0, v0)
    assert boxes[1].get_width() == pytest.approx(u1 - u0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


# ------------------------------------------------------------------- augmentation, views


@pytest.mark.parametrize(
    ("view", "panels"),
    [("raw", 1), ("segmented", 1), ("crop", 1), ("heatmaps", 3), ("augmented", 1)],
)
def test_every_explorer_view_draws(frame, view, panels):
    fig = plt.figure()
    params = AugmentParams(rotation_deg=30.0, scale=1.1)
    views.draw_view(fig, frame, view, SMALL, "synthetic", joint=5, augment=params)
    plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.images]
    plots += [ax for ax in fig.axes if ax.patches and not ax.images]  # the depth bar chart
    assert len(plots) == panels
    # The selected joint is circled in magenta wherever joints are drawn.
    if view != "heatmaps":
        assert any(
            np.allclose(c.get_edgecolor()[0][:3], (1.0, 0.0, 1.0)) for c in plots[0].collections
        )
    with pytest.raises(ValueError, match="view 'side'"):
        views.draw_view(fig, frame, "side", SMALL, "synthetic")


def test_crop_views_centre_at_the_joint_centroid_like_pose_training(frame):
    fig = plt.figure()
    views.draw_view(fig, frame, "crop", SMALL, "synthetic")
    drawn = next(c for c in fig.axes[0].collections if len(c.get_offsets()) == 16)
    centroid = drawn.get_offsets().mean(axis=0)  # joints in normalized crop coordinates
    assert np.abs(centroid).max() < 0.15  # joints' centroid near the crop centre (0, 0)
    assert "joint centroid" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="center 'middle'"):
        views.draw_view(fig, frame, "crop", SMALL, "synthetic", center="middle")


# ---------------------------------------------------------------- composite figures


def drawn_labels(ax):
    """The tick labels (of ticks inside the view: matplotlib does not draw the others), axis
    labels and title of `ax` that show text."""
    texts = [ax.xaxis.label, ax.yaxis.label, ax.title]
    for axis, coord, limits in ((ax.xaxis, 0, ax.get_xlim()), (ax.yaxis, 1, ax.get_ylim())):
        low, high = sorted(limits)
        slack = 1e-9 * max(1.0, high - low)
        for tick in axis.get_ticklabels():  # positioned at its tick's data coordinate
            if low - slack <= tick.get_position()[coord] <= high + slack:
                texts.append(tick)
    return [t for t in texts if t.get_visible() and t.get_text()]


def label_boxes(fig):
    """(axes index, bounding box) of every visible tick label, axis label and title."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [
        (k, text.get_window_extent(renderer))
        for k, ax in enumerate(fig.axes)
        for text in drawn_labels(ax)
    ]


def assert_no_label_collides_across_panels(fig):
    boxes = label_boxes(fig)
    for i, (k, a) in enumerate(boxes):
        for m, b in boxes[i + 1 :]:
            if k != m:
                assert not a.overlaps(b), f"labels of panels {k} and {m} overlap: {a} {b}"


def test_crop_ticks_are_short():
    _, ax = plt.subplots()
    viz.show_crop(ax, np.zeros((8, 8)), 250.0, colorbar=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "-0.5", "0", "0.5", "1"]


def augmented_samples(frame):
    center = hand_center(frame.depth_mm, ICVL, SMALL)
    crop = make_crop(center, ICVL, SMALL.cube_mm, 32)
    out = {}
    for label, params in (
        ("original", AugmentParams()),
        ("rotation +60 deg", AugmentParams(rotation_deg=60.0)),
        ("scale 1.2", AugmentParams(scale=1.2)),
        ("translation (+0.1, -0.1) x S", AugmentParams(translate=(0.1, -0.1))),
    ):
        moved = augment_crop(crop, params)
        out[label] = sample_targets(crop_depth(frame.depth_mm, moved), frame.uvd, moved, SMALL)
    return out


def test_augmentation_figure_labels_do_not_collide(frame):
    fig = views.augmentation_figure(augmented_samples(frame), "synthetic")
    assert_no_label_collides_across_panels(fig)
    crops = [ax for ax in fig.axes if ax.images]
    assert crops[0].get_ylabel()
    assert not crops[1].get_ylabel()


def test_centre_crops_figure_labels_do_not_collide(frame, sample):
    crops = {"CoM": (np.array([60.0, 90.0, 500.0]), sample, 12.0)}
    crops["refined"] = (np.array([62.0, 92.0, 510.0]), sample, 4.0)
    fig = views.centre_crops_figure([(frame, crops), (frame, crops)], "synthetic")
    assert_no_label_collides_across_panels(fig)
    assert fig.axes[1].get_title() == "crop at CoM: 12.0 mm off"


def decorated_axes(fig):
    """The figure's axes and their secondary axes (the colorbar's millimetre scale)."""
    out = []
    for ax in fig.axes:
        out.append(ax)
        out += [child for child in ax.child_axes if child.get_visible()]
    return out


def assert_labels_stay_off_other_panels(fig):
    """No tick label, axis label or title of one panel (colorbars and their secondary scale
    included) overlaps another panel's plotting area or labels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = decorated_axes(fig)
    owner = {id(child): id(ax) for ax in fig.axes for child in ax.child_axes}
    for k, ax in enumerate(axes):
        texts = drawn_labels(ax)
        for m, other in enumerate(axes):
            related = {id(ax), owner.get(id(ax))} & {id(other), owner.get(id(other))}
            if m == k or related - {None}:
                continue
            area = other.get_window_extent(renderer)
            for text in texts:
                box = text.get_window_extent(renderer)
                assert not box.overlaps(area), (
                    f"{text.get_text()!r} of panel {k} overlaps panel {m}'s area"
                )


@pytest.mark.parametrize("size", [32, 128])
def test_crop_colorbar_label_stays_clear_of_the_crop(frame, size):
    """Notebook 01's explorer (heatmaps view, its figure size) and its crop figure: the
    colorbar's 'normalized depth' label and ticks sit between crop and bar, not under the crop."""
    config = CropConfig(input_size=size, heatmap_size=size // 2)
    fig = plt.figure(figsize=(15, 4.4))
    views.draw_view(fig, frame, "heatmaps", config, "synthetic", joint=3)
    fig.tight_layout()
    assert_labels_stay_off_other_panels(fig)
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    assert [t.get_text() for t in bar.get_yticklabels()] == list(viz.CROP_TICK_LABELS)


def test_centre_crops_explorer_keeps_the_colorbar_off_the_crops(frame, sample):
    crops = {"CoM": (np.array([60.0, 90.0, 500.0]), sample, 12.0)}
    crops["refined (localization net)"] = (np.array([62.0, 92.0, 510.0]), sample, 4.0)
    fig = views.centre_crops_explorer(frame, crops, "synthetic")
    assert_labels_stay_off_other_panels(fig)
    assert_no_label_collides_across_panels(fig)
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1
    assert fig.axes[0].get_legend() is not None


def faint_outputs(sample, peak=0.05, channels=6):
    rng = np.random.default_rng(0)
    return {
        "heatmaps": sample["heatmaps"] * peak,
        "uvd_crop": sample["uvd_crop"],
        "attention": rng.uniform(0, 1, (channels, *sample["heatmaps"].shape[1:])),
    }


def test_prediction_grid_scales_faint_heatmaps_to_their_maximum(sample):
    out = faint_outputs(sample)
    rows = [("frame 0", sample, out), ("frame 1", sample, out)]
    channels = views.spread_channels(np.stack([out["attention"]] * 2), count=2)
    fig = views.prediction_grid(rows, "synthetic", channels, stack="stack 2")
    predicted = fig.axes[2]
    overlay = predicted.images[-1].get_array()
    assert overlay.max() == pytest.approx(1.0)  # drawn at full strength, not at 0.05
    peaks = out["heatmaps"].max(axis=(1, 2))
    assert f"scaled to its max (peaks {peaks.min():.2f}-{peaks.max():.2f})" in predicted.get_title()
    assert len(fig.axes) == 2 * (3 + 2) + 1  # two masks per row + the mask colorbar
    # The masks lie over the crop they weight: the crop image, then the mask on top.
    mask_ax = fig.axes[3]
    assert len(mask_ax.images) == 2
    np.testing.assert_allclose(mask_ax.images[1].get_array(), out["attention"][channels[0]])
    assert mask_ax.images[1].get_alpha() < 1
    # The true joints beside the predicted skeleton.
    truth = [c for c in fig.axes[0].collections if c.get_label() == "truth"]
    np.testing.assert_allclose(truth[0].get_offsets(), sample["uvd_crop"][:, :2])
    assert_no_label_collides_across_panels(fig)


def test_pose_explorer_shows_truth_prediction_heatmap_and_a_mask(sample):
    out = faint_outputs(sample)
    fig = views.pose_explorer_figure(
        sample, out, joint=3, error_mm=12.34, dataset="icvl", channel=1
    )
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles[0] == "ground truth"
    assert titles[1].endswith("12.3 mm off")
    assert f"peak {out['heatmaps'][3].max():.2f}" in titles[2]
    assert titles[3] == "attention mask M, channel 1"
    plt.close(fig)


def test_prediction_grid_without_attention_has_three_columns(sample):
    out = {k: v for k, v in faint_outputs(sample).items() if k != "attention"}
    fig = views.prediction_grid([("frame 0", sample, out)], "synthetic")
    assert len(fig.axes) == 3


def test_normalized_heatmaps_keep_zero_maps_and_clip_negatives():
    heat = np.zeros((2, 4, 4))
    heat[0, 1, 2] = 0.2
    heat[0, 0, 0] = -0.1
    scaled = viz.normalized_heatmaps(heat)
    assert scaled[0, 1, 2] == 1.0
    assert scaled[0, 0, 0] == 0.0
    assert not scaled[1].any()


def test_spread_channels_picks_the_most_varying_masks():
    masks = np.zeros((2, 4, 3, 3))
    masks[:, 2, 0, 0] = 1.0
    masks[:, 1, 0, 0] = 0.5
    assert list(views.spread_channels(masks, count=2)) == [2, 1]


def test_joint_labels_sit_in_two_columns_without_sharing_a_row(frame):
    uv = frame.uvd
    xlim, ylim = (0.0, 100.0), (120.0, 20.0)  # an image's axes: v grows downward
    anchors = viz.label_positions(uv, xlim, ylim)
    left = uv[:, 0] <= np.median(uv[:, 0])
    assert np.allclose(anchors[left, 0], 3.0)
    assert np.allclose(anchors[~left, 0], 97.0)
    for side in (left, ~left):
        rows = anchors[side, 1]
        assert len(np.unique(rows.round(6))) == side.sum()  # one row per label
        assert np.all((rows > 20) & (rows < 120))
        # In the joints' order of v, so the leader lines of a column do not cross.
        order = np.argsort(uv[side, 1])
        assert np.all(np.diff(rows[order]) > 0)


def test_labelled_skeleton_names_every_joint_and_shows_the_missing_colour(frame):
    fig, ax = plt.subplots()
    viz.show_depth(ax, frame.depth_mm)
    viz.zoom_to(ax, frame.uvd)
    viz.draw_skeleton(ax, frame.uvd, "icvl", labels=True)
    names = {t.get_text() for t in ax.texts}
    assert names == set(JOINT_NAMES["icvl"])
    bar_texts = [t.get_text() for t in fig.axes[1].texts]
    assert "no\nreading" in bar_texts
    plt.close(fig)


def test_pipeline_figure_has_the_five_steps(sample, frame):
    out = faint_outputs(sample)
    item = {**sample, "center_uvd": np.asarray(sample["center_uvd"])}
    fig = views.pipeline_figure(frame, item, out, "icvl", channel=2, centre_label="LocNet centre")
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(".")[0] for t in titles] == ["1", "2", "3", "4", "5"]
    assert "LocNet centre" in titles[0]
    assert "channel 2" in titles[3]
    plt.close(fig)
