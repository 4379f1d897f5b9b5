"""The small attention network learns: after a fixed number of steps on fixed synthetic frames
it beats the constant-pose floor of frames it never saw (another SyntheticSource seed) by a
clear margin (not a timing test; deterministic on CPU).

Built directly on the datasets, models and losses (no training package), so it tests the
network and its targets, not the trainer's bookkeeping. A network whose heatmaps stay at zero
cannot pass: its decoded 2D positions sit at the argmax of a flat map (the crop's corner). The
heatmap heads start at zero (as in the shipped runs), so the heatmaps must leave zero to pass.

The budget (256 frames, 200 steps of 8, about 8 s on one thread of a 100 GFLOP/s machine) was
chosen on held-out frames: 16 frames and 100 steps memorised (2D 0.61, 3D 0.52 of the floor on
its own frames) but reached only 0.85 and 0.89 of the floor on held-out ones. At this budget the
held-out ratios were 0.59 (2D) and 0.65 (3D) with the seed below, at most 0.67 and 0.75 over
torch seeds 1-3; the thresholds are 0.75 and 0.8.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose_lib import floors, metrics
from handpose_lib.camera import ICVL
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.decode import decode_heatmaps
from handpose_lib.models import PoseNet, PoseNetConfig, pose_loss
from handpose_lib.preprocess import CropConfig, crop_to_image

FRAMES, STEPS, BATCH, LR = 256, 200, 8, 5e-3
HELD_OUT, HELD_OUT_SEED = 64, 1  # the training frames are SyntheticSource seed 0
SIZE = 32
NET = PoseNetConfig(
    input_size=SIZE,
    heatmap_size=SIZE // 2,
    channels=16,
    num_stacks=2,
    hourglass_depth=2,
    se_reduction=4,
    reg_channels=16,
    reg_blocks=2,
    reg_hidden=32,
    zero_init_heads=True,
)
CROP = CropConfig(input_size=SIZE, heatmap_size=SIZE // 2, heatmap_sigma=2.0)
TARGET_KEYS = ("image", "heatmaps", "depth", "uvd_crop")


def load_frames(num_frames: int, seed: int) -> dict[str, torch.Tensor]:
    dataset = HandPoseDataset(SyntheticSource(num_frames, seed=seed), CROP, centers="joints")
    items = [dataset[i] for i in range(num_frames)]
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


@pytest.fixture(scope="module")
def frames() -> dict[str, torch.Tensor]:
    """The training frames."""
    return load_frames(FRAMES, seed=0)


@pytest.fixture(scope="module")
def held_out() -> dict[str, torch.Tensor]:
    """Frames of another seed, never trained on: the ones the network is scored on."""
    return load_frames(HELD_OUT, seed=HELD_OUT_SEED)


def to_image_uvd(uvd_crop: torch.Tensor, batch: dict[str, torch.Tensor]) -> np.ndarray:
    return crop_to_image(
        uvd_crop.detach().numpy(),
        batch["crop_transform"].numpy(),
        batch["center_uvd"][:, 2].numpy(),
        batch["cube_mm"].numpy(),
        SIZE,
    )


def beats_floor(pred_uvd: np.ndarray, gt_uvd: np.ndarray) -> tuple[bool, dict, dict]:
    """The margin the test asks for: 2D error under 0.75 x, 3D error under 0.8 x the error of the
    constant-pose floor (the frames' own mean pose at each true centroid, an oracle)."""
    model = metrics.error_parts(pred_uvd, gt_uvd, ICVL)
    floor = metrics.error_parts(floors.oracle_mean_pose(gt_uvd, ICVL), gt_uvd, ICVL)
    ok = (
        model["2D error (px)"] < 0.75 * floor["2D error (px)"]
        and model["3D error (mm)"] < 0.8 * floor["3D error (mm)"]
    )
    return ok, model, floor


@pytest.fixture(scope="module")
def trained(frames) -> tuple[PoseNet, list[float]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = PoseNet(NET)
        optimizer = torch.optim.Adam(net.parameters(), lr=LR)
        order = torch.Generator().manual_seed(0)
        peaks = []
        for _ in range(STEPS):
            idx = torch.randperm(FRAMES, generator=order)[:BATCH]
            batch = {k: frames[k][idx] for k in TARGET_KEYS}
            out = net(batch["image"])
            loss, _ = pose_loss(out, batch, NET)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            peaks.append(float(out["heatmaps"][-1].detach().amax(dim=(-2, -1)).mean()))
    finally:
        torch.set_num_threads(threads)
    return net.eval(), peaks


@pytest.mark.slow
def test_attention_net_beats_the_constant_pose_floor_on_held_out_frames(
    frames, held_out, trained, one_torch_thread
):
    net, peaks = trained
    # Held out: no pose of the scored frames is a training pose.
    train_poses = frames["uvd"].flatten(1)
    assert torch.cdist(held_out["uvd"].flatten(1), train_poses).min() > 1.0
    with torch.no_grad():
        out = net(held_out["image"])
    pred = to_image_uvd(out["uvd_crop"], held_out)
    ok, model, floor = beats_floor(pred, held_out["uvd"].numpy())
    assert ok, f"model {model} vs constant-pose floor {floor}"
    # The heatmaps left the all-zero start: their peaks rose towards the targets' 1.
    assert np.mean(peaks[-10:]) > 0.4
    assert out["heatmaps"][-1].amax(dim=(-2, -1)).mean() > 0.4


@pytest.mark.slow
def test_all_zero_heatmaps_fail_the_same_check(held_out, trained, one_torch_thread):
    net, _ = trained
    with torch.no_grad():
        out = net(held_out["image"])
    # The trained depths, with u, v decoded as the network does but from all-zero heatmaps.
    zero = torch.zeros_like(out["heatmaps"][-1])
    uv = decode_heatmaps(zero, NET.decode_method)
    from_zero = torch.cat([uv, out["depth"][..., None]], dim=-1)
    ok, _, _ = beats_floor(to_image_uvd(from_zero, held_out), held_out["uvd"].numpy())
    assert not ok


def test_training_is_deterministic(held_out, one_torch_thread):
    def two_steps() -> torch.Tensor:
        torch.manual_seed(0)
        net = PoseNet(NET)
        optimizer = torch.optim.Adam(net.parameters(), lr=LR)
        for start in (0, BATCH):
            batch = {k: held_out[k][start : start + BATCH] for k in TARGET_KEYS}
            loss, _ = pose_loss(net(batch["image"]), batch, NET)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    assert torch.equal(two_steps(), two_steps())
