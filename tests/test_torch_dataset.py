"""HandPoseDataset: item layout, decoding back to the image, centre providers, cache path,
and determinism of augmented items across epochs, seeds and DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from handpose_lib.camera import ICVL
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.preprocess import AugmentConfig, CropConfig, crop_to_image

SMALL = CropConfig(input_size=32, heatmap_size=16)


class DiscSource:
    """FrameSource of ICVL-sized frames: a disc in front of a wall, joints on the disc."""

    dataset = "icvl"

    def __init__(self, n=6):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        vv, uu = np.mgrid[0 : ICVL.height, 0 : ICVL.width].astype(np.float64)
        cu, cv, cd = 140.0 + 6 * i, 100.0 + 4 * i, 350.0 + 15 * i
        disc = (uu - cu) ** 2 + (vv - cv) ** 2 < 32**2
        depth = np.where(disc, cd + 0.05 * (uu - cu), 800.0).astype(np.float32)
        angle = np.linspace(0, 2 * np.pi, 16, endpoint=False) + i
        u, v = np.rint(cu + 20 * np.cos(angle)), np.rint(cv + 20 * np.sin(angle))
        uvd = np.stack([u, v, depth[v.astype(int), u.astype(int)]], axis=1).astype(np.float64)
        return DepthFrame(depth_mm=depth, uvd=uvd, camera=ICVL, name=f"disc_{i}")


def assert_items_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_item_layout_at_paper_size():
    item = HandPoseDataset(DiscSource(2))[1]
    expected = {
        "image": ((1, 128, 128), torch.float32),
        "heatmaps": ((16, 64, 64), torch.float32),
        "depth": ((16,), torch.float32),
        "uvd_crop": ((16, 3), torch.float32),
        "uvd": ((16, 3), torch.float64),
        "center_uvd": ((3,), torch.float64),
        "crop_transform": ((3, 3), torch.float64),
        "cube_mm": ((), torch.float64),
        "index": ((), torch.int64),
    }
    assert {k: (tuple(v.shape), v.dtype) for k, v in item.items()} == expected
    assert int(item["index"]) == 1
    assert float(item["cube_mm"]) == 250.0
    assert item["image"].min() >= -1
    assert item["image"].max() <= 1


def test_batches_decode_back_to_the_ground_truth():
    dataset = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=3)
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    uvd = crop_to_image(
        batch["uvd_crop"].double().numpy(),
        batch["crop_transform"].numpy(),
        batch["center_uvd"][:, 2].numpy(),
        batch["cube_mm"].numpy(),
        SMALL.input_size,
    )
    # float32 targets: a few thousandths of a pixel / mm.
    np.testing.assert_allclose(uvd, batch["uvd"].numpy(), atol=5e-3)


def test_same_seed_same_items_and_epochs_differ():
    a = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=11)
    b = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=11)
    assert_items_equal(a[2], b[2])
    a.set_epoch(1)
    assert not torch.equal(a[2]["crop_transform"], b[2]["crop_transform"])
    b.set_epoch(1)
    assert_items_equal(a[2], b[2])
    other_seed = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=12)
    other_seed.set_epoch(1)
    assert not torch.equal(other_seed[2]["crop_transform"], b[2]["crop_transform"])


def test_batches_do_not_depend_on_worker_count():
    dataset = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=5)
    dataset.set_epoch(2)

    def batches(workers):
        loader = DataLoader(dataset, batch_size=3, num_workers=workers)
        return [b for b in loader]

    for x, y in zip(batches(0), batches(2), strict=True):
        assert_items_equal(x, y)


@pytest.mark.slow  # starts worker processes
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_persistent_workers_see_each_epoch(start):
    # The engine builds its loader once; its workers keep their copy of the dataset, so
    # set_epoch must reach them (the epoch is in shared memory).
    dataset = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=5)
    loader = DataLoader(
        dataset,
        batch_size=3,
        num_workers=2,
        persistent_workers=True,
        multiprocessing_context=start,
    )
    reference = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), seed=5)
    first_batches = []
    for epoch in (0, 1, 2):
        dataset.set_epoch(epoch)
        reference.set_epoch(epoch)
        expected = list(DataLoader(reference, batch_size=3))
        got = list(loader)
        for batch, want in zip(got, expected, strict=True):
            assert_items_equal(batch, want)
        first_batches.append(got[0]["crop_transform"])
    # The epochs' augmentations differ, so equality above is not trivial.
    assert not torch.equal(first_batches[0], first_batches[2])


def test_without_augmentation_items_are_the_plain_crop():
    dataset = HandPoseDataset(DiscSource(), SMALL, seed=1)
    first = dataset[0]
    dataset.set_epoch(5)
    assert_items_equal(first, dataset[0])


def test_centre_providers():
    source = DiscSource(3)
    centers = np.array([[150.0, 100.0, 360.0], [160.0, 110.0, 370.0], [170.0, 120.0, 380.0]])
    from_array = HandPoseDataset(source, SMALL, centers=centers)
    for i in range(3):
        np.testing.assert_allclose(from_array[i]["center_uvd"].numpy(), centers[i])
    from_joints = HandPoseDataset(source, SMALL, centers="joints")[0]["center_uvd"].numpy()
    from_com = HandPoseDataset(source, SMALL)[0]["center_uvd"].numpy()
    assert abs(from_com[2] - 350.0) < 2.0  # the disc's depth
    assert not np.allclose(from_joints, from_com)
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        HandPoseDataset(source, SMALL, centers=centers[:2])
    with pytest.raises(ValueError, match="'com', 'joints'"):
        HandPoseDataset(source, SMALL, centers="palm")


def test_cached_items_match_uncached_ones(tmp_path):
    source = DiscSource()
    plain = HandPoseDataset(source, SMALL)
    cached = HandPoseDataset(source, SMALL, cache_dir=tmp_path / "f32", cache_dtype="float32")
    for i in range(len(source)):
        assert_items_equal(plain[i], cached[i])
    augmented = HandPoseDataset(source, SMALL, augment=AugmentConfig(), cache_dir=tmp_path / "f16")
    direct = HandPoseDataset(source, SMALL, augment=AugmentConfig())
    item, reference = augmented[3], direct[3]
    torch.testing.assert_close(item["uvd_crop"], reference["uvd_crop"])
    # The cached crop is float16 and misses context beyond the cube: close, not identical.
    assert (item["image"] - reference["image"]).abs().lt(0.02).float().mean() > 0.9


def test_cached_dataset_works_in_worker_processes(tmp_path):
    dataset = HandPoseDataset(DiscSource(), SMALL, augment=AugmentConfig(), cache_dir=tmp_path)
    serial = list(DataLoader(dataset, batch_size=2))
    parallel = list(DataLoader(dataset, batch_size=2, num_workers=2))
    for x, y in zip(serial, parallel, strict=True):
        assert_items_equal(x, y)


def test_index_out_of_range():
    with pytest.raises(IndexError):
        HandPoseDataset(DiscSource(2), SMALL)[2]


@pytest.mark.parametrize("centers", ["com", "joints", "array"])
def test_dataset_pickles_for_spawned_loader_workers(centers):
    """DataLoader workers started by spawn or forkserver (macOS; Python 3.14 on Linux; a
    worker of a process pool) get the dataset pickled: a closure inside it would not pickle."""
    source = DiscSource(2)
    chosen = (
        np.stack([source[i].uvd.mean(axis=0) for i in range(2)]) if centers == "array" else centers
    )
    dataset = HandPoseDataset(source, SMALL, centers=chosen)
    copy = pickle.loads(pickle.dumps(dataset))
    for key, value in dataset[1].items():
        assert torch.equal(copy[1][key], value), key
