"""Synthetic depth hands: determinism, geometry, sensor model, ICVL on-disk round trip and
the rendered published poses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from handpose_lib.camera import ICVL
from handpose_lib.datasets import icvl, synthetic
from handpose_lib.datasets.rendered_poses import RenderedPosesSource
from handpose_lib.datasets.scene import LOCALIZATION_SCENE, SceneConfig
from handpose_lib.datasets.synthetic import (
    FINGER_ROOTS,
    NOMINAL_BONE_MM,
    PARENT,
    REST_SPLAY_DEG,
    HandPose,
    SyntheticHandConfig,
    SyntheticSource,
    forearm_direction,
    forward_kinematics,
    render_depth,
    render_frame,
    sample_bone_lengths,
    sample_pose,
    sample_shape,
    write_icvl_split,
)
from handpose_lib.published import load_labels, load_test_list


@pytest.fixture
def published(published_dir) -> None:
    """The published labels are reachable (local copy, cache or download: see conftest)."""


@pytest.fixture(scope="module")
def synthetic_frames():
    source = SyntheticSource(16, seed=11)
    return source, [source[i] for i in range(len(source))]


@pytest.fixture(autouse=True)
def _render_every_frame(monkeypatch):
    """Nothing from the memo of rendered frames: the tests below compare renders, which a kept
    copy would make equal whatever the renderer did (the memo's own test turns it on)."""
    synthetic.clear_render_memo()
    monkeypatch.setattr(synthetic, "RENDER_MEMO_BYTES", 0)
    yield
    synthetic.clear_render_memo()


def _same(a, b) -> bool:
    return np.array_equal(a.depth_mm, b.depth_mm) and np.array_equal(a.uvd, b.uvd)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_frames_different_seed_different():
    a, b, c = SyntheticSource(4, seed=7), SyntheticSource(4, seed=7), SyntheticSource(4, seed=8)
    for i in range(4):
        assert _same(a[i], b[i])
        assert not np.array_equal(a[i].uvd, c[i].uvd)
        assert not np.array_equal(a[i].depth_mm, c[i].depth_mm)
    assert not np.array_equal(a[0].uvd, a[1].uvd)


def test_frame_depends_only_on_seed_and_index():
    forward = [SyntheticSource(6, seed=3)[i] for i in range(6)]
    backward = SyntheticSource(6, seed=3)
    for i in reversed(range(6)):
        assert _same(backward[i], forward[i])
    longer = SyntheticSource(1000, seed=3)
    assert _same(longer[4], forward[4])
    assert _same(longer[-996], forward[4])  # negative indices count from the end
    assert longer[4].name == "synthetic/image_000004.png"


def test_rendered_poses_deterministic_and_seeded():
    uvd = ICVL.xyz_to_uvd(SyntheticSource(3, seed=1).hand(0).joints_xyz_mm)[None].repeat(3, 0)
    a, b, c = (RenderedPosesSource(seed=s, uvd=uvd) for s in (0, 0, 1))
    assert _same(a[2], b[2])
    assert not np.array_equal(a[2].depth_mm, c[2].depth_mm)
    # Same pose, different frame: the thickness and noise differ, the labels do not.
    assert not np.array_equal(a[0].depth_mm, a[1].depth_mm)
    assert np.array_equal(a[0].uvd, a[1].uvd)


# ------------------------------------------------------------------------------ geometry


def _depth_at_joints(frame) -> np.ndarray:
    u, v = np.rint(frame.uvd[:, :2]).astype(int).T
    return frame.depth_mm[v, u]


def _check_joints_on_hand(frames, min_close: float) -> None:
    """Joints lie inside the body: the surface seen at a joint's pixel is never behind the
    joint, and (self-occlusion aside) within a few tens of mm in front of it."""
    seen = np.array([_depth_at_joints(f) for f in frames])
    joint_d = np.array([f.uvd[:, 2] for f in frames])
    hit = seen > 0
    assert hit.mean() >= 0.95  # dropout may hit a joint pixel, rarely
    assert np.all(seen[hit] <= joint_d[hit] + 6.0)  # noise is 1.5 mm std
    assert np.mean(hit & (np.abs(seen - joint_d) < 30.0)) >= min_close


def test_projected_joints_fall_on_the_rendered_hand(synthetic_frames):
    _, frames = synthetic_frames
    _check_joints_on_hand(frames, min_close=0.75)


def test_joints_in_depth_range_and_inside_image(synthetic_frames):
    _, frames = synthetic_frames
    for frame in frames:
        assert frame.depth_mm.shape == (240, 320)
        assert frame.depth_mm.dtype == np.float32
        assert np.all((frame.uvd[:, 2] >= 200) & (frame.uvd[:, 2] <= 600))
        assert np.all((frame.uvd[:, 0] >= 10 - 1e-3) & (frame.uvd[:, 0] <= 309 + 1e-3))
        assert np.all((frame.uvd[:, 1] >= 10 - 1e-3) & (frame.uvd[:, 1] <= 229 + 1e-3))
        assert np.array_equal(frame.depth_mm, np.rint(frame.depth_mm))  # whole millimetres
        assert np.array_equal(frame.uvd, np.round(frame.uvd, 3))  # as in a label file


def test_distance_range_is_configurable():
    config = SyntheticHandConfig(distance_mm=(420.0, 520.0))
    for i in range(5):
        d = SyntheticSource(5, seed=2, config=config)[i].uvd[:, 2]
        assert d.min() >= 420
        assert d.max() <= 520


def _band_centre_of_mass(depth_mm: np.ndarray, palm_d: float) -> np.ndarray:
    """(u, v) centre of a plain depth-band segmentation around the hand, as a detector
    without the localization network would compute it."""
    rows, cols = np.nonzero((depth_mm > 0) & (np.abs(depth_mm - palm_d) <= 150))
    return np.array([cols.mean(), rows.mean()])


def test_forearm_leaves_the_frame_and_pulls_the_centre_of_mass(synthetic_frames):
    source, frames = synthetic_frames
    shifts = []
    for i, frame in enumerate(frames):
        foreground = frame.depth_mm > 0
        assert foreground[[0, -1]].any() or foreground[:, [0, -1]].any()
        hand = source.hand(i)
        armless = replace(hand.shape, forearm_radius_mm=1e-3)
        palm_xyz, palm_d = hand.joints_xyz_mm[0], frame.uvd[0, 2]
        shift = _band_centre_of_mass(frame.depth_mm, palm_d) - _band_centre_of_mass(
            render_depth(hand.joints_xyz_mm, armless), palm_d
        )
        arm_end = palm_xyz + 50.0 * forearm_direction(hand.joints_xyz_mm, hand.shape)
        arm_uv = np.diff(ICVL.xyz_to_uvd(np.stack([palm_xyz, arm_end]))[:, :2], axis=0)[0]
        shifts.append(np.dot(shift, arm_uv / np.linalg.norm(arm_uv)))
    shifts = np.array(shifts)  # pixels toward the arm
    assert np.all(shifts > -1.0)
    # Little arm is in view when the hand sits at the border the arm leaves through.
    assert np.mean(shifts > 3.0) >= 0.75
    assert np.median(shifts) > 15.0


def test_sensor_drops_pixels_at_silhouette_edges(synthetic_frames):
    source, frames = synthetic_frames
    for i in range(4):
        hand = source.hand(i)
        clean = render_depth(hand.joints_xyz_mm, hand.shape)
        dropped = (clean > 0) & (frames[i].depth_mm == 0)
        padded = np.pad(clean > 0, 1)
        border = (clean > 0) & ~(
            padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )
        assert dropped.sum() > 20
        assert border[dropped].sum() > 0.5 * dropped.sum()  # most holes sit at the outline
        noise = frames[i].depth_mm[(clean > 0) & ~dropped] - clean[(clean > 0) & ~dropped]
        assert 0.5 < noise.std() < 3.0


def test_sensor_without_noise_is_the_quantized_render():
    config = SyntheticHandConfig(noise_std_mm=0.0, edge_dropout=0.0, speckle_dropout=0.0)
    source = SyntheticSource(2, seed=5, config=config)
    hand = source.hand(1)
    clean = render_depth(hand.joints_xyz_mm, hand.shape)
    np.testing.assert_array_equal(source[1].depth_mm, np.rint(clean))


def test_hand_geometry_scales_with_thickness():
    hand = SyntheticSource(1, seed=4).hand(0)
    thin = replace(hand.shape, radius_mm=hand.shape.radius_mm * 0.7)
    assert (render_depth(hand.joints_xyz_mm, thin) > 0).sum() < (
        render_depth(hand.joints_xyz_mm, hand.shape) > 0
    ).sum()


# ---------------------------------------------------------------------------- kinematics


def _angle_deg(a, b) -> np.ndarray:
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_kinematics_respects_bone_lengths_and_joint_limits():
    config = SyntheticHandConfig()
    lim = config.limits
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(200):
        pose = sample_pose(rng, config)
        scale = rng.uniform(*config.hand_scale)
        bones = sample_bone_lengths(rng, config, scale)
        joints = forward_kinematics(pose, bones)
        measured = np.linalg.norm(joints[1:] - joints[list(PARENT[1:])], axis=1)
        np.testing.assert_allclose(measured, bones[1:], rtol=1e-9)
        low = NOMINAL_BONE_MM[1:] * config.hand_scale[0] * (1 - config.bone_length_jitter)
        high = NOMINAL_BONE_MM[1:] * config.hand_scale[1] * (1 + config.bone_length_jitter)
        assert np.all((measured >= low - eps) & (measured <= high + eps))

        roots = np.array(FINGER_ROOTS)
        proximal, distal = joints[roots + 1] - joints[roots], joints[roots + 2] - joints[roots + 1]
        mcp = np.degrees(np.arcsin(proximal[:, 2] / np.linalg.norm(proximal, axis=1)))
        pip = _angle_deg(proximal, distal)
        splay = np.degrees(np.arctan2(proximal[:, 0], proximal[:, 1])) - REST_SPLAY_DEG
        assert np.all((mcp >= lim.mcp_flex_deg[0] - eps) & (mcp <= lim.mcp_flex_deg[1] + eps))
        assert np.all((pip >= lim.pip_flex_deg[0] - eps) & (pip <= lim.pip_flex_deg[1] + eps))
        defined = np.abs(mcp) < 80  # sideways angle is undefined for a bone along the normal
        assert np.all(np.abs(splay[defined]) <= max(map(abs, lim.abduction_deg)) + 1e-4)
        thumb_bend = _angle_deg(joints[2] - joints[1], joints[3] - joints[2])
        assert thumb_bend <= max(map(abs, lim.thumb_flex_deg)) + eps
        opposition = np.degrees(np.arcsin((joints[2] - joints[1])[2] / bones[2]))
        assert lim.thumb_opposition_deg[0] - eps <= opposition <= lim.thumb_opposition_deg[1] + eps


def test_limits_config_narrows_the_pose():
    limits = replace(SyntheticHandConfig().limits, mcp_flex_deg=(0.0, 0.0), pip_flex_deg=(0, 0))
    config = SyntheticHandConfig(limits=limits)
    pose = sample_pose(np.random.default_rng(1), config)
    joints = forward_kinematics(pose, NOMINAL_BONE_MM)
    roots = np.array(FINGER_ROOTS)
    np.testing.assert_allclose(joints[roots + 2, 2], 0.0, atol=1e-9)  # flat fingers


def test_mirrored_hands_have_the_other_chirality():
    def chirality(joints):
        palm = joints[0]
        return np.sign(np.cross(joints[4] - palm, joints[13] - palm) @ (joints[1] - palm))

    right = SyntheticSource(5, seed=1)
    left = SyntheticSource(5, seed=1, config=SyntheticHandConfig(mirror_probability=1.0))
    for i in range(5):
        assert left.hand(i).mirrored
        assert not right.hand(i).mirrored
        assert chirality(left.hand(i).joints_xyz_mm) == -chirality(right.hand(i).joints_xyz_mm)


# ------------------------------------------------------------------------- ICVL on disk


def test_icvl_split_round_trip(tmp_path):
    source = SyntheticSource(3, seed=9)
    label_path = write_icvl_split(tmp_path, source)
    assert label_path == tmp_path / "labels.txt"
    names, uvd = icvl.read_label_file(label_path)
    assert names == [source[i].name for i in range(3)]
    for i, name in enumerate(names):
        frame = source[i]
        np.testing.assert_allclose(uvd[i], frame.uvd, atol=1e-9)
        np.testing.assert_array_equal(
            icvl.read_depth_png(tmp_path / "Depth" / name), frame.depth_mm
        )


def test_icvl_split_parallel_subset_matches_serial(tmp_path):
    source = SyntheticSource(6, seed=2)
    serial = write_icvl_split(tmp_path / "a", source, "test_seq_1.txt", indices=[5, 1, 3])
    parallel = write_icvl_split(tmp_path / "b", source, "test_seq_1.txt", [5, 1, 3], workers=2)
    assert serial.read_text() == parallel.read_text()
    names, _ = icvl.read_label_file(parallel)
    assert names == [source.name(i) for i in (5, 1, 3)]
    for name in names:
        a = icvl.read_depth_png(tmp_path / "a" / "Depth" / name)
        np.testing.assert_array_equal(a, icvl.read_depth_png(tmp_path / "b" / "Depth" / name))


# ------------------------------------------------------------------ rendered test poses


def test_rendered_poses_carry_the_published_labels(published):
    source = RenderedPosesSource(seed=0)
    labels = load_labels("icvl")
    assert len(source) == 1596
    assert source.dataset == "icvl"
    assert np.array_equal(source.uvd, labels)
    frames = [source[i] for i in (0, 701, 702, 1595)]
    for i, frame in zip((0, 701, 702, 1595), frames, strict=True):
        assert np.array_equal(frame.uvd, labels[i])
        assert frame.name == "rendered/" + load_test_list("icvl")[i]
    _check_joints_on_hand([source[i] for i in range(0, 1596, 100)], min_close=0.9)


def test_rendered_poses_write_as_icvl_test_sequence(published, tmp_path):
    source = RenderedPosesSource(seed=0)
    path = write_icvl_split(tmp_path, source, "test_seq_1.txt", indices=range(3))
    names, uvd = icvl.read_label_file(path)
    np.testing.assert_allclose(uvd, source.uvd[:3], atol=5e-4)
    assert names[0] == "rendered/test_seq_1/image_0000.png"


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_frames": 0}, "num_frames must be >= 1"),
        ({"num_frames": 2.5}, "num_frames must be an integer"),
        ({"num_frames": 2, "seed": -1}, "seed must be a non-negative integer"),
        ({"num_frames": 2, "config": {"noise_std_mm": 1}}, "config must be a SyntheticHandConfig"),
    ],
)
def test_synthetic_source_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticSource(**kwargs)


def test_bad_index_and_config():
    source = SyntheticSource(3)
    with pytest.raises(IndexError, match="index 3 out of range for 3 frames"):
        source[3]
    with pytest.raises(TypeError, match="must be an integer"):
        source[1.0]
    with pytest.raises(ValueError, match=r"roll_deg=\(10.0, -10.0\): expected \(low, high\)"):
        SyntheticHandConfig(roll_deg=(10.0, -10.0))
    with pytest.raises(ValueError, match="edge_dropout must be a probability"):
        SyntheticHandConfig(edge_dropout=1.5)
    with pytest.raises(ValueError, match="noise_std_mm must be >= 0"):
        SyntheticHandConfig(noise_std_mm=-1.0)


def test_impossible_placement_is_a_clear_error():
    config = SyntheticHandConfig(distance_mm=(300.0, 301.0))  # no hand is 1 mm deep
    with pytest.raises(ValueError, match=r"no hand fits distance_mm=\(300.0, 301.0\)"):
        SyntheticSource(1, config=config)[0]


def test_rendered_poses_and_renderer_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"uvd must have shape \(N, 16, 3\)"):
        RenderedPosesSource(uvd=np.zeros((4, 14, 3)))
    uvd = np.full((2, 16, 3), 300.0)
    uvd[1, 3, 2] = -5.0
    with pytest.raises(ValueError, match=r"uvd frames \[1\]: need finite values and depth > 0"):
        RenderedPosesSource(uvd=uvd)
    with pytest.raises(ValueError, match="1 names for 2 frames"):
        RenderedPosesSource(uvd=np.full((2, 16, 3), 300.0), names=["a.png"])
    shape = sample_shape(np.random.default_rng(0), SyntheticHandConfig(), 1.0)
    with pytest.raises(ValueError, match=r"joints_xyz must be finite \(16, 3\)"):
        render_depth(np.zeros((15, 3)), shape)
    with pytest.raises(ValueError, match="must span the palm plane"):
        render_depth(np.full((16, 3), 300.0), shape)
    joints = forward_kinematics(
        HandPose(np.zeros((4, 2)), np.zeros(4), np.array([45, 0, 0])), NOMINAL_BONE_MM
    )
    with pytest.raises(ValueError, match="positive depth"):
        render_depth(joints, shape)  # the local frame puts joints at z <= 0


def test_write_icvl_split_rejects_bad_arguments(tmp_path):
    source = SyntheticSource(2)
    with pytest.raises(ValueError, match=r"expected a relative '\*.txt' path"):
        write_icvl_split(tmp_path, source, label_file="../labels.txt")
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        write_icvl_split(tmp_path, source, workers=0)
    with pytest.raises(ValueError, match="without repeats"):
        write_icvl_split(tmp_path, source, indices=[1, 1])
    with pytest.raises(IndexError, match="split index 7 out of range"):
        write_icvl_split(tmp_path, source, indices=[7])

    class NyuSource:
        dataset = "nyu"

        def __len__(self):
            return 1

    with pytest.raises(ValueError, match="needs an ICVL-layout source"):
        write_icvl_split(tmp_path, NyuSource())


# ------------------------------------------------------------------------- scene options


def test_scene_off_renders_exactly_the_hand_alone():
    plain, inactive = SyntheticSource(3, seed=7), SyntheticSource(3, seed=7, scene=SceneConfig())
    for i in range(3):
        np.testing.assert_array_equal(plain[i].depth_mm, inactive[i].depth_mm)


def test_scene_keeps_the_hand_and_adds_a_background_behind_it():
    exact = SyntheticHandConfig(noise_std_mm=0.0, edge_dropout=0.0, speckle_dropout=0.0)
    plain = SyntheticSource(6, seed=8, config=exact)
    scene = SyntheticSource(6, seed=8, config=exact, scene=SceneConfig(background=True))
    both = SyntheticSource(6, seed=8, scene=LOCALIZATION_SCENE)
    for i in range(6):
        a, b = plain[i], scene[i]
        np.testing.assert_array_equal(a.uvd, b.uvd)
        np.testing.assert_array_equal(a.uvd, both[i].uvd)
        far_joint = b.camera.uvd_to_xyz(b.uvd)[:, 2].max()
        added = (a.depth_mm == 0) & (b.depth_mm > 0)
        assert added.sum() > 1000  # a torso or wall fills part of the empty image
        assert b.depth_mm[added].min() > far_joint  # ... always behind the hand


def test_forearm_to_edge_reaches_the_image_border():
    source = SyntheticSource(8, seed=9)
    config = SyntheticHandConfig(noise_std_mm=0.0, edge_dropout=0.0, speckle_dropout=0.0)
    scene = SceneConfig(forearm_to_edge=True)
    for i in range(8):
        hand = source.hand(i)
        rng, scene_rng = np.random.default_rng(0), np.random.default_rng([2, 9, i])
        depth = render_frame(hand.joints_xyz_mm, hand.shape, rng, config, ICVL, scene, scene_rng)
        border = np.concatenate([depth[0], depth[-1], depth[:, 0], depth[:, -1]])
        assert (border > 0).any(), f"frame {i}: the forearm does not reach the image border"


def test_scene_config_is_validated():
    with pytest.raises(ValueError, match="torso_gap_mm"):
        SceneConfig(torso_gap_mm=(300.0, 100.0))
    with pytest.raises(ValueError, match="forearm_elevation_deg"):
        SceneConfig(forearm_elevation_deg=(0.0, 80.0))
    with pytest.raises(ValueError, match="scene must be a SceneConfig"):
        SyntheticSource(2, scene={"background": True})


def test_rendered_frames_are_kept_and_handed_out_as_copies(monkeypatch):
    """A frame read again comes from the process's memo: equal to a fresh render, and a copy
    that a consumer may change without changing the next read; another source's frame of the
    same index is never the kept one."""
    frame_bytes = 240 * 320 * 4 + 16 * 3 * 8
    monkeypatch.setattr(synthetic, "RENDER_MEMO_BYTES", 64 * frame_bytes)
    source = synthetic.SyntheticSource(3, seed=5)
    first = source[1]
    first.depth_mm[:] = -1.0  # a consumer writing into its frame
    again = source[1]
    assert len(synthetic._RENDERED) == 1
    synthetic.clear_render_memo()
    fresh = source[1]
    np.testing.assert_array_equal(again.depth_mm, fresh.depth_mm)
    np.testing.assert_array_equal(again.uvd, fresh.uvd)
    assert (again.depth_mm > 0).any()
    others = [
        synthetic.SyntheticSource(3, seed=6),
        synthetic.SyntheticSource(3, seed=5, scene=LOCALIZATION_SCENE),
        synthetic.SyntheticSource(3, seed=5, config=replace(source.config, noise_std_mm=9.0)),
    ]
    for other in others:
        assert not np.array_equal(other[1].depth_mm, fresh.depth_mm), other
    # A source larger than the budget is rendered every time; within it, the budget holds.
    synthetic.clear_render_memo()
    synthetic.SyntheticSource(65, seed=5)[0]
    assert not synthetic._RENDERED
    monkeypatch.setattr(synthetic, "RENDER_MEMO_BYTES", 4 * frame_bytes)
    for index in range(3):
        source[index]
    synthetic.SyntheticSource(3, seed=7)[0]  # a fourth frame
    synthetic.SyntheticSource(3, seed=8)[0]  # a fifth: past the budget, not kept
    assert len(synthetic._RENDERED) == 4
