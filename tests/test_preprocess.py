"""Preprocessing: centre of mass, cube crop, exact coordinate round trips, targets,
augmentation consistency and the crop cache, on small synthetic blob frames."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest

from handpose_lib.camera import ICVL, NYU
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.preprocess import (
    AugmentConfig,
    AugmentParams,
    CropCache,
    CropConfig,
    augment_crop,
    build_cache,
    center_of_mass,
    closest_object_mask,
    crop_depth,
    crop_to_image,
    gaussian_heatmaps,
    hand_center,
    image_to_crop,
    joints_center,
    make_crop,
    normalize_depth,
    prepare_sample,
    recrop_normalized,
    refine_center,
)

SMALL = CropConfig(input_size=32, heatmap_size=16, heatmap_sigma=1.0)


def blob_frame(center=(170.0, 110.0, 380.0), radius_px=35, tilt=0.05, seed=0) -> DepthFrame:
    """An ICVL-sized frame: a slightly tilted disc (the 'hand') in front of a far wall,
    with 16 joints on the disc surface."""
    height, width = ICVL.height, ICVL.width
    vv, uu = np.mgrid[0:height, 0:width].astype(np.float64)
    cu, cv, cd = center
    surface = cd + tilt * (uu - cu) - tilt * (vv - cv)
    disc = (uu - cu) ** 2 + (vv - cv) ** 2 < radius_px**2
    depth = np.where(disc, surface, 900.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, 16)
    r = rng.uniform(0, radius_px * 0.8, 16)
    u, v = np.rint(cu + r * np.cos(angle)), np.rint(cv + r * np.sin(angle))
    uvd = np.stack([u, v, depth[v.astype(int), u.astype(int)]], axis=1).astype(np.float64)
    return DepthFrame(depth_mm=depth, uvd=uvd, camera=ICVL, name=f"blob_{seed}")


class BlobSource:
    """Tiny FrameSource of blob frames that counts its reads."""

    dataset = "icvl"

    def __init__(self, n=5, key="blobs-v1"):
        self.frames = [
            blob_frame(center=(150.0 + 5 * i, 110.0 + 3 * i, 360.0 + 10 * i), seed=i)
            for i in range(n)
        ]
        self.cache_key = key
        self.reads = 0

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        self.reads += 1
        return self.frames[i]


def crop_pixel(uvd_crop, size):
    """Nearest crop pixel (row, col) of normalized crop coordinates."""
    x = (uvd_crop[..., 0] + 1) / 2 * size - 0.5
    y = (uvd_crop[..., 1] + 1) / 2 * size - 0.5
    return np.rint(y).astype(int), np.rint(x).astype(int)


# ---------------------------------------------------------------------------- centre of mass


def test_center_of_mass_of_a_disc_is_its_centre_and_depth():
    frame = blob_frame(tilt=0.0)
    mask = closest_object_mask(frame.depth_mm, 150.0, 10.0, 2000.0)
    assert mask.sum() > 3000
    assert not mask[0, 0]
    com = center_of_mass(frame.depth_mm, mask)
    np.testing.assert_allclose(com, [170.0, 110.0, 380.0], atol=1e-6)
    np.testing.assert_allclose(hand_center(frame.depth_mm, ICVL, CropConfig()), com, atol=1e-6)


def test_rough_depth_band_selects_the_object_at_that_depth():
    frame = blob_frame()
    center = hand_center(frame.depth_mm, ICVL, CropConfig(), rough_depth_mm=900.0)
    assert abs(center[2] - 900.0) < 1e-6  # the wall, not the disc


def test_refinement_moves_the_centre_off_the_forearm_onto_the_hand():
    depth = np.zeros((ICVL.height, ICVL.width), np.float32)
    vv, uu = np.mgrid[0 : ICVL.height, 0 : ICVL.width]
    depth[(uu - 160) ** 2 + (vv - 60) ** 2 < 30**2] = 400.0  # hand
    depth[60:, 150:171] = 450.0  # forearm down to the image border, inside the depth band
    config = CropConfig()
    initial = center_of_mass(depth, closest_object_mask(depth, 150.0, 10.0, 2000.0))
    refined = refine_center(depth, initial, ICVL, config.cube_mm, iterations=5)
    assert abs(refined[1] - 60) < 0.5 * abs(initial[1] - 60)


def test_empty_segmentation_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        hand_center(np.zeros((240, 320), np.float32), ICVL, CropConfig())


def test_joints_center_is_the_3d_centroid():
    frame = blob_frame()
    center = joints_center(frame.uvd, ICVL)
    np.testing.assert_allclose(ICVL.uvd_to_xyz(center), frame.xyz_mm.mean(axis=0), atol=1e-9)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("camera", [ICVL, NYU])
def test_crop_image_xyz_round_trips_are_exact(camera):
    rng = np.random.default_rng(1)
    center = np.array([camera.cx + 17.3, camera.cy - 9.1, 520.0])
    crop = make_crop(center, camera, 250.0, 128)
    uvd = np.column_stack(
        [
            rng.uniform(0, camera.width, 20),
            rng.uniform(0, camera.height, 20),
            rng.uniform(300, 800, 20),
        ]
    )
    uvd_crop = crop.image_to_crop(uvd)
    np.testing.assert_allclose(crop.crop_to_image(uvd_crop), uvd, atol=1e-6, rtol=0)
    xyz = camera.uvd_to_xyz(crop.crop_to_image(uvd_crop))
    back = crop.image_to_crop(camera.xyz_to_uvd(xyz))
    np.testing.assert_allclose(back, uvd_crop, atol=1e-6, rtol=0)


def test_crop_frames_the_cube_centre_and_edges():
    center = np.array([150.0, 100.0, 400.0])
    crop = make_crop(center, ICVL, 250.0, 128)
    np.testing.assert_allclose(crop.image_to_crop(center[None]), [[0.0, 0.0, 0.0]], atol=1e-12)
    # A point half a cube to the right at the centre depth lands on the right edge (+1) and one
    # half a cube behind has normalized depth +1.
    right = ICVL.xyz_to_uvd(ICVL.uvd_to_xyz(center) + np.array([125.0, 0.0, 0.0]))
    np.testing.assert_allclose(crop.image_to_crop(right[None])[0, 0], 1.0, atol=1e-12)
    behind = center + np.array([0.0, 0.0, 125.0])
    np.testing.assert_allclose(crop.image_to_crop(behind[None])[0, 2], 1.0, atol=1e-12)


def test_batched_transforms_match_per_crop_ones():
    crops = [
        make_crop(np.array([140.0 + 10 * i, 120.0, 350.0 + 40 * i]), ICVL, 250.0, 64)
        for i in range(3)
    ]
    crops = [
        augment_crop(c, AugmentParams(rotation_deg=30.0 * i, scale=1.1))
        for i, c in enumerate(crops)
    ]
    uvd = np.random.default_rng(2).uniform(100, 300, size=(3, 5, 3))
    matrices = np.stack([c.matrix for c in crops])
    center_d = np.array([c.center_uvd[2] for c in crops])
    cube = np.array([c.cube_mm for c in crops])
    batched = image_to_crop(uvd, matrices, center_d, cube, 64)
    for b, crop in enumerate(crops):
        np.testing.assert_allclose(batched[b], crop.image_to_crop(uvd[b]), atol=1e-12)
    np.testing.assert_allclose(crop_to_image(batched, matrices, center_d, cube, 64), uvd, atol=1e-6)


def test_augmented_crop_round_trip_is_exact():
    crop = make_crop(np.array([170.0, 110.0, 380.0]), ICVL, 250.0, 128)
    params = AugmentParams(
        rotation_deg=73.0, scale=0.87, translate=(0.05, -0.08), translate_depth_mm=12.0
    )
    aug = augment_crop(crop, params)
    uvd = blob_frame().uvd
    np.testing.assert_allclose(aug.crop_to_image(aug.image_to_crop(uvd)), uvd, atol=1e-6, rtol=0)
    assert aug.cube_mm == pytest.approx(250.0 * 0.87)
    assert aug.center_uvd[2] == pytest.approx(392.0)


# ---------------------------------------------------------------------------- image and targets


def test_depth_normalization_clips_and_sends_missing_to_background():
    depth = np.array([[0.0, 380.0, 380.0 + 62.5, 380.0 - 200.0, 2000.0]])
    np.testing.assert_allclose(normalize_depth(depth, 380.0, 250.0), [[1.0, 0.0, 0.5, -1.0, 1.0]])


def test_crop_samples_the_depth_under_each_joint():
    frame = blob_frame()
    center = hand_center(frame.depth_mm, ICVL, CropConfig())
    sample = prepare_sample(frame.depth_mm, frame.uvd, ICVL, center, CropConfig())
    image = sample["image"][0]
    assert image.shape == (128, 128)
    assert image.min() >= -1
    assert image.max() == 1.0
    rows, cols = crop_pixel(sample["uvd_crop"], 128)
    # Joints sit on the disc surface: the crop pixel under each joint holds its depth.
    np.testing.assert_allclose(image[rows, cols], sample["depth"], atol=0.01)


def test_heatmap_peaks_at_the_joint_with_value_one():
    size = 16
    pixels = np.array([[3.0, 7.0], [12.0, 0.0], [8.4, 5.6]])  # heatmap (x, y) pixels
    uv_norm = (pixels + 0.5) / size * 2 - 1
    heatmaps = gaussian_heatmaps(uv_norm, size, sigma=1.5)
    assert heatmaps.shape == (3, size, size)
    assert heatmaps.dtype == np.float32
    for j, (x, y) in enumerate(pixels):
        row, col = np.unravel_index(heatmaps[j].argmax(), (size, size))
        assert (col, row) == (round(x), round(y))
    assert heatmaps[0, 7, 3] == pytest.approx(1.0)
    assert heatmaps[1, 0, 12] == pytest.approx(1.0)
    assert heatmaps[0, 7, 3 + 3] == pytest.approx(np.exp(-9 / (2 * 1.5**2)), rel=1e-6)


def test_sample_targets_layout():
    frame = blob_frame()
    center = hand_center(frame.depth_mm, ICVL, SMALL)
    sample = prepare_sample(frame.depth_mm, frame.uvd, ICVL, center, SMALL)
    assert sample["image"].shape == (1, 32, 32)
    assert sample["heatmaps"].shape == (16, 16, 16)
    assert sample["depth"].shape == (16,)
    assert sample["uvd_crop"].shape == (16, 3)
    np.testing.assert_array_equal(sample["uvd_crop"][:, 2], sample["depth"])
    np.testing.assert_allclose(sample["uvd"], frame.uvd)
    np.testing.assert_allclose(sample["center_uvd"], center)
    assert float(sample["cube_mm"]) == SMALL.cube_mm


# ---------------------------------------------------------------------------- augmentation


def test_augment_sampling_is_deterministic_and_within_ranges():
    config = AugmentConfig(
        rotation_deg=30.0, scale=(0.8, 1.2), translate=0.1, translate_depth_mm=5.0
    )
    draws = [config.sample(np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    assert draws[0] != config.sample(np.random.default_rng(8))
    for seed in range(50):
        p = config.sample(np.random.default_rng(seed))
        assert abs(p.rotation_deg) <= 30
        assert 0.8 <= p.scale <= 1.2
        assert max(abs(t) for t in p.translate) <= 0.1
        assert abs(p.translate_depth_mm) <= 5


def test_identity_augmentation_changes_nothing():
    crop = make_crop(np.array([170.0, 110.0, 380.0]), ICVL, 250.0, 64)
    same = augment_crop(crop, AugmentParams())
    np.testing.assert_allclose(same.matrix, crop.matrix, atol=1e-12)
    np.testing.assert_allclose(same.center_uvd, crop.center_uvd, atol=1e-12)


def test_scale_shrinks_the_hand_in_the_crop():
    frame = blob_frame()
    crop = make_crop(frame.uvd.mean(axis=0), ICVL, 250.0, 128)
    zoomed_out = augment_crop(crop, AugmentParams(scale=1.25))
    spread = np.ptp(crop.image_to_crop(frame.uvd)[:, :2], axis=0)
    spread_out = np.ptp(zoomed_out.image_to_crop(frame.uvd)[:, :2], axis=0)
    np.testing.assert_allclose(spread_out, spread / 1.25, rtol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_augmented_joints_still_land_on_the_hand(seed):
    frame = blob_frame(seed=seed)
    config = CropConfig()
    params = AugmentConfig(translate=0.05).sample(np.random.default_rng(seed))
    center = hand_center(frame.depth_mm, ICVL, config)
    sample = prepare_sample(frame.depth_mm, frame.uvd, ICVL, center, config, params)
    image = sample["image"][0]
    rows, cols = crop_pixel(sample["uvd_crop"], 128)
    inside = (rows >= 0) & (rows < 128) & (cols >= 0) & (cols < 128)
    assert inside.all()
    assert (image[rows, cols] < 1.0).all()  # on the hand, not the background
    np.testing.assert_allclose(image[rows, cols], sample["depth"], atol=0.02)
    # ... and the heatmaps follow the joints.
    hm = sample["heatmaps"]
    peak = np.array([np.unravel_index(h.argmax(), h.shape) for h in hm])
    expected = (sample["uvd_crop"][:, [1, 0]] + 1) / 2 * 64 - 0.5
    assert np.abs(peak - expected).max() <= 0.5 + 1e-6


def test_recropping_a_cached_crop_matches_cropping_the_full_image():
    frame = blob_frame()
    config = CropConfig()
    base = make_crop(hand_center(frame.depth_mm, ICVL, config), ICVL, config.cube_mm, 128)
    target = augment_crop(base, AugmentParams(rotation_deg=40.0, scale=0.8, translate=(0.03, 0.0)))
    direct = crop_depth(frame.depth_mm, target)
    recropped = recrop_normalized(crop_depth(frame.depth_mm, base), base, target)
    close = np.abs(direct - recropped) < 0.01
    assert close.mean() > 0.97  # nearest-neighbour twice differs only along silhouettes


def test_config_validation_and_dataset_cubes():
    assert CropConfig.for_dataset("icvl").cube_mm == 250.0
    assert CropConfig.for_dataset("nyu").cube_mm == 300.0
    assert CropConfig.for_dataset("nyu", input_size=64).input_size == 64
    with pytest.raises(ValueError, match="unknown dataset"):
        CropConfig.for_dataset("msra")
    with pytest.raises(ValueError, match="cube_mm"):
        CropConfig(cube_mm=0)
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="positive depth"):
        make_crop(np.array([10.0, 10.0, 0.0]), ICVL, 250.0, 32)


# ---------------------------------------------------------------------------- cache


def test_cache_builds_once_then_reuses(tmp_path):
    source = BlobSource()
    cache = build_cache(source, tmp_path / "c", SMALL, dtype="float32")
    assert source.reads == len(source)
    images = np.load(tmp_path / "c" / "images.npy", mmap_mode="r")
    assert images.shape == (5, 1, 32, 32)
    assert images.dtype == np.float32
    for i in range(len(source)):
        frame = source.frames[i]
        crop = make_crop(hand_center(frame.depth_mm, ICVL, SMALL), ICVL, SMALL.cube_mm, 32)
        np.testing.assert_array_equal(cache.image(i), crop_depth(frame.depth_mm, crop))
        np.testing.assert_allclose(cache.crop(i).matrix, crop.matrix)
        np.testing.assert_array_equal(cache.uvd(i), frame.uvd)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reuse must not warn
        again = build_cache(source, tmp_path / "c", SMALL, dtype="float32")
    assert source.reads == len(source)
    assert len(again) == 5


@pytest.mark.parametrize(
    "change",
    ["config", "centers", "dtype", "source"],
)
def test_stale_cache_is_rebuilt_not_reused(tmp_path, change):
    source = BlobSource()
    build_cache(source, tmp_path, SMALL, dtype="float16")
    kwargs = {"config": SMALL, "centers": "com", "dtype": "float16"}
    if change == "config":
        kwargs["config"] = replace(SMALL, cube_mm=300.0)
    elif change == "centers":
        kwargs["centers"] = np.array([f.uvd.mean(axis=0) for f in source.frames])
    elif change == "dtype":
        kwargs["dtype"] = "float32"
    else:
        source = BlobSource(key="blobs-v2")
    reads = source.reads
    with pytest.warns(UserWarning, match="stale"):
        cache = build_cache(source, tmp_path, **kwargs)
    assert source.reads == reads + len(source)
    assert cache.meta["key"]["dtype"] == np.dtype(kwargs["dtype"]).name
    assert cache.crop(0).cube_mm == kwargs["config"].cube_mm


def test_source_without_cache_key_is_fingerprinted_by_content(tmp_path):
    source = BlobSource()
    del source.cache_key
    build_cache(source, tmp_path, SMALL)
    source.frames[-1].depth_mm[0, 0] += 1  # same type and length, other content
    with pytest.warns(UserWarning, match="stale"):
        build_cache(source, tmp_path, SMALL)


def test_incomplete_cache_is_rebuilt(tmp_path):
    source = BlobSource()
    build_cache(source, tmp_path, SMALL)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["complete"] = False  # as left by a build that crashed
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="never completed"):
        CropCache.open(tmp_path)
    with pytest.warns(UserWarning, match="incomplete"):
        build_cache(source, tmp_path, SMALL)
    assert CropCache.open(tmp_path).meta["complete"]


def test_cache_rejects_centres_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        build_cache(BlobSource(), tmp_path, SMALL, centers=np.zeros((4, 3)))


# ---------------------------------------------------------------------------- cache context


def test_default_context_keeps_the_cache_and_its_key_as_before(tmp_path):
    cache = build_cache(BlobSource(2), tmp_path, SMALL, dtype="float32")
    assert "context" not in cache.meta["key"]["config"]  # caches built before stay valid
    assert cache.image(0).shape == (32, 32)
    np.testing.assert_array_equal(cache.image_for(0, cache.crop(0)), cache.image(0))
    with pytest.raises(ValueError, match="context"):
        CropConfig(context=0.9)


def test_context_cache_keeps_what_a_rotation_brings_into_the_crop(tmp_path):
    # A large object fills the whole cube crop, so a 45 degree rotation of the crop window
    # shows image content from outside the cube crop's corners.
    source = BlobSource(1)
    source.frames = [blob_frame(radius_px=150)]
    plain = build_cache(source, tmp_path / "plain", SMALL, dtype="float32")
    wide_config = replace(SMALL, context=1.5)
    wide = build_cache(source, tmp_path / "wide", wide_config, dtype="float32")
    assert wide.image(0).shape == (48, 48)
    assert "context" in wide.meta["key"]["config"]
    base = wide.crop(0)
    np.testing.assert_allclose(base.matrix, plain.crop(0).matrix)  # the network's crop
    # Unaugmented, the network sees the same cube crop as without context.
    np.testing.assert_allclose(wide.image_for(0, base), plain.image(0), atol=1e-5)
    rotated = augment_crop(base, AugmentParams(rotation_deg=45.0))
    direct = crop_depth(source.frames[0].depth_mm, rotated)
    match_wide = (np.abs(wide.image_for(0, rotated) - direct) < 0.01).mean()
    match_plain = (np.abs(plain.image_for(0, rotated) - direct) < 0.01).mean()
    assert match_wide > 0.99
    assert match_plain < 0.9  # the corners came back as background


@pytest.mark.slow  # worker processes
def test_cache_and_com_centres_built_in_parallel_equal_one_process(tmp_path):
    from handpose_lib.training.data import com_centers  # noqa: PLC0415 (training side)

    source = BlobSource(n=7)
    config = replace(SMALL, context=1.5)
    one = build_cache(source, tmp_path / "one", config, dtype="float32")
    many = build_cache(source, tmp_path / "many", config, dtype="float32", workers=3)
    for name in ("images", "uvd", "center_uvd", "matrix", "cube_mm"):
        a = np.load(tmp_path / "one" / f"{name}.npy")
        b = np.load(tmp_path / "many" / f"{name}.npy")
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert len(many) == len(one) == 7
    # 7 frames over 3 workers: chunks of one frame, results in frame order.
    serial = com_centers(source, config)
    parallel = com_centers(source, config, workers=3)
    np.testing.assert_array_equal(serial, parallel)
    assert not np.isnan(parallel).any()
    some = com_centers(source, config, frames=np.array([5, 1]), workers=2)
    assert np.isnan(some[[0, 2, 3, 4, 6]]).all()
    np.testing.assert_array_equal(some[[1, 5]], serial[[1, 5]])
