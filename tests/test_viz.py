"""Plotting helpers of notebook 01: profiles, skeletons, crop/heatmap alignment, centre
offsets, the augmentation consistency check and every explorer view."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from handpose_lib import viz
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


# ------------------------------------------------------------------------------------ profiles


def test_profile_env_overrides_the_parameter(monkeypatch):
    monkeypatch.setenv(viz.ENV_PROFILE, "smoke")
    assert viz.resolve_profile("paper").name == "smoke"
    monkeypatch.delenv(viz.ENV_PROFILE)
    assert viz.resolve_profile("paper").input_size == 128


def test_unknown_profile_names_where_it_came_from(monkeypatch):
    monkeypatch.delenv(viz.ENV_PROFILE, raising=False)
    with pytest.raises(ValueError, match="PROFILE='laptop'"):
        viz.resolve_profile("laptop")
    monkeypatch.setenv(viz.ENV_PROFILE, "huge")
    with pytest.raises(ValueError, match=r"\$HANDPOSE_PROFILE='huge'"):
        viz.resolve_profile("cpu")


@pytest.mark.parametrize("name", viz.PROFILES)
def test_profiles_change_sizes_only(name):
    profile = viz.PROFILES[name]
    assert profile.heatmap_size * 2 == profile.input_size  # the hourglass resolution, S / 2
    for dataset, cube in (("synthetic", 250.0), ("icvl", 250.0), ("nyu", 300.0)):
        config = profile.crop_config(dataset)
        assert (config.input_size, config.cube_mm) == (profile.input_size, cube)
        assert config.segment_band_mm == CropConfig().segment_band_mm
    assert (viz.PROFILES["cpu"].input_size, viz.PROFILES["paper"].input_size) == (64, 128)


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
    assert image.get_array().mask[0, 0] and not image.get_array().mask[1, 1]
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


def random_hand(rng, layout="icvl"):
    return rng.normal([0.0, 0.0, 500.0], 30.0, size=(len(JOINT_NAMES[layout]), 3))


@pytest.mark.parametrize("layout", ["icvl", "nyu"])
def test_offsets_are_measured_along_each_hands_own_axes(layout):
    names = JOINT_NAMES[layout]
    palm, mid = names.index("Palm"), names.index("Mid.R")
    rng = np.random.default_rng(0)
    joints = np.stack([random_hand(rng, layout) for _ in range(3)])
    axis = joints[:, palm, :2] - joints[:, mid, :2]
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    across = np.column_stack([-axis[:, 1], axis[:, 0]])
    shift = np.column_stack([12.0 * axis + 5.0 * across, np.full(3, -7.0)])
    out = viz.offsets_along_hand(joints.mean(axis=1) + shift, joints, layout)
    np.testing.assert_allclose(out["toward_wrist"], 12.0)
    np.testing.assert_allclose(out["across"], 5.0)
    np.testing.assert_allclose(out["depth"], -7.0)
    np.testing.assert_allclose(out["total"], np.sqrt(12**2 + 5**2 + 7**2))


def test_offsets_do_not_depend_on_the_hands_roll():
    rng = np.random.default_rng(1)
    joints = random_hand(rng)
    center = joints.mean(axis=0) + np.array([20.0, -9.0, 4.0])
    angle = np.radians(70.0)
    roll = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    before = viz.offsets_along_hand(center[None], joints[None], "icvl")
    after = viz.offsets_along_hand((center @ roll.T)[None], (joints @ roll.T)[None], "icvl")
    for part in before:
        np.testing.assert_allclose(after[part], before[part])


def test_mark_centers_draws_the_cube_box_of_each_centre():
    _, ax = plt.subplots()
    centers = {"a": np.array([100.0, 80.0, 400.0]), "b": np.array([150.0, 90.0, 500.0])}
    viz.mark_centers(ax, centers, ICVL, cube_mm=250.0)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 2
    u0, v0, u1, v1 = projected_box(centers["b"], ICVL, 250.0)
    assert boxes[1].get_xy() == (u0, v0)
    assert boxes[1].get_width() == pytest.approx(u1 - u0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_error_histograms_report_the_mean_and_reject_empty_input():
    _, ax = plt.subplots()
    viz.plot_error_histograms(ax, {"CoM": np.array([10.0, 20.0, 60.0])})
    assert ax.get_legend().get_texts()[0].get_text() == "CoM: mean 30.0 mm"
    with pytest.raises(ValueError, match="non-empty"):
        viz.plot_error_histograms(ax, {"CoM": np.array([])})


# ------------------------------------------------------------------- augmentation, views


def test_surface_gap_is_small_when_aligned_and_large_when_not(frame, sample):
    assert viz.surface_gap_mm(sample) < 25.0
    crop = make_crop(hand_center(frame.depth_mm, ICVL, SMALL), ICVL, SMALL.cube_mm, 32)
    moved = augment_crop(crop, AugmentParams(rotation_deg=90.0, translate=(0.1, 0.05)))
    augmented = sample_targets(crop_depth(frame.depth_mm, moved), frame.uvd, moved, SMALL)
    assert viz.surface_gap_mm(augmented) < 25.0
    # Joints of the original crop on the augmented image: they no longer match.
    mismatched = dict(augmented, uvd_crop=sample["uvd_crop"], depth=sample["depth"])
    assert viz.surface_gap_mm(mismatched) > 40.0


@pytest.mark.parametrize(
    ("view", "panels"),
    [("raw", 1), ("segmented", 1), ("crop", 1), ("heatmaps", 3), ("augmented", 1)],
)
def test_every_explorer_view_draws(frame, view, panels):
    fig = plt.figure()
    params = AugmentParams(rotation_deg=30.0, scale=1.1)
    viz.draw_view(fig, frame, view, SMALL, "synthetic", joint=5, augment=params)
    plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.images]
    plots += [ax for ax in fig.axes if ax.patches and not ax.images]  # the depth bar chart
    assert len(plots) == panels
    # The selected joint is circled in magenta wherever joints are drawn.
    if view != "heatmaps":
        assert any(
            np.allclose(c.get_edgecolor()[0][:3], (1.0, 0.0, 1.0)) for c in plots[0].collections
        )
    with pytest.raises(ValueError, match="view 'side'"):
        viz.draw_view(fig, frame, "side", SMALL, "synthetic")
