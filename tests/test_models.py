"""Networks, losses and heatmap decoding: shapes, parameter counts, accuracy, trainability."""

from __future__ import annotations

import pytest
import torch

from handpose_lib.decode import (
    decode_heatmaps,
    integral_decode,
    norm_to_pixel,
    pixel_to_norm,
    select_stack,
)
from handpose_lib.models import (
    VARIANTS,
    Hourglass,
    LocNet,
    LocNetConfig,
    PoseNet,
    PoseNetConfig,
    ResBlock,
    SEBlock,
    StackedHourglass,
    hand_center_target,
    heatmap_loss,
    location_loss,
    pose_loss,
    regression_loss,
)

# The networks here are small (or a single paper-size forward): one thread is fastest and
# leaves the machine's other cores alone. The fixture restores the setting after each test.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The test sizes, spelled out here so the tests do not depend on the profile registry.
SMOKE_POSENET = {
    "input_size": 32,
    "heatmap_size": 16,
    "channels": 16,
    "num_stacks": 2,
    "hourglass_depth": 2,
    "se_reduction": 4,
    "reg_channels": 16,
    "reg_blocks": 2,
    "reg_hidden": 32,
}
SMOKE_LOCNET = {
    "input_size": 32,
    "stem_channels": 8,
    "stage_channels": (16, 16),
    "hidden": 32,
    "se_reduction": 4,
}


def smoke_posenet(**overrides) -> PoseNetConfig:
    return PoseNetConfig(**{**SMOKE_POSENET, **overrides})


def smoke_locnet() -> LocNetConfig:
    return LocNetConfig(**SMOKE_LOCNET)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def gaussian_heatmaps(uv: torch.Tensor, size: int, sigma: float = 1.0) -> torch.Tensor:
    """(..., 2) normalized u, v -> (..., size, size) Gaussians with peak 1 (the data convention)."""
    px = norm_to_pixel(uv, size)
    grid = torch.arange(size, dtype=torch.float32)
    gx = torch.exp(-((grid - px[..., 0:1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((grid - px[..., 1:2]) ** 2) / (2 * sigma**2))
    return gy[..., :, None] * gx[..., None, :]


def synthetic_batch(num_joints: int = 16, size: int = 32, batch: int = 4) -> tuple:
    """A fixed batch whose targets are consistent: heatmaps peak at uvd_crop's u, v."""
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 1, size, size, generator=gen) * 2 - 1
    uv = torch.rand(batch, num_joints, 2, generator=gen) * 1.6 - 0.8
    depth = torch.rand(batch, num_joints, generator=gen) - 0.5
    targets = {
        "heatmaps": gaussian_heatmaps(uv, size // 2),
        "depth": depth,
        "uvd_crop": torch.cat([uv, depth[..., None]], dim=-1),
    }
    return image, targets


# --- building blocks -------------------------------------------------------------------------


def test_se_block_rescales_each_channel_by_a_gate_in_0_1():
    torch.manual_seed(0)
    se = SEBlock(32, reduction=16)
    x = torch.randn(2, 32, 8, 8)
    y = se(x)
    ratio = y / x
    assert y.shape == x.shape
    # One gate per (sample, channel), constant over space, strictly inside (0, 1).
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-5)
    assert ratio.min() > 0
    assert ratio.max() < 1
    assert n_params(se) == 32 * 2 + 2 + 2 * 32 + 32


def test_res_block_shapes_and_parameter_counts():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    se = n_params(SEBlock(32, 16))
    same = ResBlock(32, 32, se_reduction=16)
    assert isinstance(same.shortcut, torch.nn.Identity)
    assert n_params(same) == 2 * (9 * 32 * 32 + 2 * 32) + se
    proj = ResBlock(16, 32, stride=2, se_reduction=16)
    assert proj(x).shape == (2, 32, 4, 4)
    assert n_params(proj) == 9 * 16 * 32 + 9 * 32 * 32 + 2 * 2 * 32 + se + 16 * 32 + 2 * 32
    assert (ResBlock(16, 16)(x) >= 0).all()  # post-addition ReLU, as SE-ResNet
    with pytest.raises(ValueError, match="stride"):
        ResBlock(16, 16, stride=3)


def test_hourglass_keeps_shape_and_has_3_blocks_per_level_plus_bottom():
    torch.manual_seed(0)
    for depth in (1, 3):
        hg = Hourglass(depth, 16, se_reduction=4)
        assert hg(torch.randn(1, 16, 16, 16)).shape == (1, 16, 16, 16)
        assert n_params(hg) == (3 * depth + 1) * n_params(ResBlock(16, 16, se_reduction=4))
    with pytest.raises(ValueError, match="divisible"):
        Hourglass(3, 16)(torch.randn(1, 16, 12, 12))


def test_stacked_hourglass_outputs_per_stack():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 16, 16)
    heatmaps, features = StackedHourglass(3, 16, 5, 2, se_reduction=4)(x)
    assert [h.shape for h in heatmaps] == [(2, 5, 16, 16)] * 3
    assert [f.shape for f in features] == [(2, 16, 16, 16)] * 3
    heatmaps, features = StackedHourglass(2, 16, 5, 2, 4, with_heatmaps=False)(x)
    assert heatmaps == []
    assert len(features) == 2


# --- forward pass rebuilt by hand from the submodules ------------------------------------------


def reference_forward(net: PoseNet, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """PoseNet's forward written out from its submodules: the stem gives the shallow features
    F_raw; each stack runs hourglass -> feature layers -> heatmap head, and feeds the next stack
    x + remap(features) + remap(heatmaps); what the regression head reads is the variant:
    plain the last stack's features (all of uvd), two_branch F_raw, direct the last stack's
    features, attention Eq. 3: M * F_raw with M = sigmoid(BN(conv1x1(last features)))."""
    cfg, stacks = net.config, net.hourglass
    shallow = net.stem(image)
    x, heatmaps, features = shallow, [], []
    for i in range(cfg.num_stacks):
        feat = stacks.features[i](stacks.hourglasses[i](x))
        features.append(feat)
        if cfg.variant != "plain":
            heatmaps.append(stacks.heads[i](feat))
        if i < cfg.num_stacks - 1:
            x = x + stacks.remap_features[i](feat)
            if cfg.variant != "plain":
                x = x + stacks.remap_heatmaps[i](heatmaps[-1])
    out = {"shallow": shallow, "features": features, "heatmaps": heatmaps}
    if cfg.variant == "plain":
        uvd = net.regression(features[-1]).view(-1, cfg.num_joints, 3)
        return {**out, "depth": uvd[..., 2], "uvd_crop": uvd}
    if cfg.variant == "attention":
        conv, bn, _ = net.mask
        mask = torch.sigmoid(bn(conv(features[-1])))
        out["attention"] = mask
        reg_input = mask * shallow
    else:
        reg_input = shallow if cfg.variant == "two_branch" else features[-1]
    depth = net.regression(reg_input)
    uv = decode_heatmaps(heatmaps[-1], cfg.decode_method)
    return {**out, "depth": depth, "uvd_crop": torch.cat([uv, depth[..., None]], dim=-1)}


def check_against_reference(net: PoseNet, image: torch.Tensor) -> None:
    """The network's outputs equal the hand-built forward (the same operations in the same
    order; float32 tolerance only so that no platform's kernel choice matters), and the depth
    would differ had the regression read any other variant's input (so the comparison can
    tell the wirings apart)."""
    with torch.no_grad():
        out, ref = net(image), reference_forward(net, image)
        assert len(out["heatmaps"]) == len(ref["heatmaps"])
        for got, want in zip(out["heatmaps"], ref["heatmaps"], strict=True):
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(out["depth"], ref["depth"])
        torch.testing.assert_close(out["uvd_crop"], ref["uvd_crop"])
        assert ("attention" in out) == ("attention" in ref)
        if "attention" in ref:
            torch.testing.assert_close(out["attention"], ref["attention"])
        if net.config.variant == "plain":
            return
        shallow, last, first = ref["shallow"], ref["features"][-1], ref["features"][0]
        alternatives = {"two_branch": shallow, "direct": last}
        if "attention" in ref:
            mask = ref["attention"]
            # Wrong wirings of Eq. 3: the mask on the detection features, or a mask made from
            # the first stack's features.
            alternatives["mask * features"] = mask * last
            conv, bn, _ = net.mask
            alternatives["first-stack mask"] = torch.sigmoid(bn(conv(first))) * shallow
            alternatives = {k: v for k, v in alternatives.items() if k != net.config.variant}
        else:
            alternatives.pop(net.config.variant)
        for name, reg_input in alternatives.items():
            other = net.regression(reg_input)
            assert (other - out["depth"]).abs().max() > 1e-4, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_posenet_forward_equals_its_submodules_by_hand(variant):
    torch.manual_seed(0)
    net = PoseNet(smoke_posenet(variant=variant)).eval()
    image, _ = synthetic_batch()
    check_against_reference(net, image)


# --- full networks at paper size ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_posenet_paper_size_is_deterministic_and_wired_as_built_by_hand(variant):
    cfg = PoseNetConfig(variant=variant)
    assert (cfg.input_size, cfg.heatmap_size, cfg.channels, cfg.num_stacks) == (128, 64, 128, 2)
    image = torch.rand(1, 1, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def build_and_run(seed: int) -> tuple[PoseNet, dict]:
        torch.manual_seed(seed)
        net = PoseNet(cfg).eval()
        with torch.no_grad():
            return net, net(image)

    net, out = build_and_run(0)
    _, again = build_and_run(0)
    for key in ("depth", "uvd_crop", *(["attention"] if variant == "attention" else [])):
        assert torch.equal(out[key], again[key]), key  # same seed: bit-identical
    torch.manual_seed(1)  # another seed, other weights (no forward needed to see it)
    other = PoseNet(cfg).state_dict()
    assert not torch.equal(net.state_dict()["stem.0.0.weight"], other["stem.0.0.weight"])
    assert out["uvd_crop"].shape == (1, 16, 3)
    assert [h.shape for h in out["heatmaps"]] == (
        [] if variant == "plain" else [(1, 16, 64, 64)] * 2
    )
    check_against_reference(net, image)


@pytest.mark.slow
def test_locnet_paper_size_is_deterministic_and_per_sample():
    images = torch.rand(3, 1, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1

    def build_and_run(seed: int) -> tuple[LocNet, torch.Tensor]:
        torch.manual_seed(seed)
        net = LocNet(LocNetConfig()).eval()
        with torch.no_grad():
            return net, net(images)

    net, out = build_and_run(0)
    assert out.shape == (3, 3)
    assert torch.equal(out, build_and_run(0)[1])
    assert not torch.equal(out, build_and_run(1)[1])
    with torch.no_grad():
        # In eval mode each frame's offset is its own: the same alone as in the batch, and by
        # hand from the two halves of the network.
        alone = torch.cat([net(images[i : i + 1]) for i in range(3)])
        by_hand = net.fc(net.features(images).flatten(1))
    torch.testing.assert_close(alone, out)
    torch.testing.assert_close(by_hand, out)
    assert (out[0] - out[1]).abs().max() > 1e-4  # different frames, different offsets
    with pytest.raises(ValueError, match=r"\(B, 1, 128, 128\)"):
        net(torch.zeros(2, 1, 64, 64))


def test_posenet_rejects_wrong_input_and_bad_config():
    net = PoseNet(smoke_posenet())
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        net(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="variant"):
        PoseNetConfig(variant="fancy")
    with pytest.raises(ValueError, match="heatmap_size"):
        PoseNetConfig(input_size=128, heatmap_size=32)
    with pytest.raises(ValueError, match="2\\*\\*hourglass_depth"):
        smoke_posenet(hourglass_depth=5)
    with pytest.raises(ValueError, match="channels"):
        PoseNetConfig(channels=0)
    with pytest.raises(ValueError, match="input_size"):
        LocNetConfig(input_size=20)


def test_attention_masks_lie_strictly_inside_0_1_and_vary():
    torch.manual_seed(0)
    net = PoseNet(smoke_posenet(variant="attention"))
    image, _ = synthetic_batch()
    for mode in (net.train, net.eval):
        mode()
        with torch.no_grad():
            mask = net(image)["attention"]
        assert mask.shape == (4, 16, 16, 16)
        assert mask.min() > 0
        assert mask.max() < 1
        assert mask.std() > 0.01


def test_same_seed_same_weights_and_outputs():
    image, _ = synthetic_batch()

    def build(seed: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
        torch.manual_seed(seed)
        net = PoseNet(smoke_posenet()).eval()
        loc = LocNet(smoke_locnet()).eval()
        with torch.no_grad():
            return net.state_dict(), net(image)["uvd_crop"], loc(image)

    a, b, c = build(1), build(1), build(2)
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert torch.equal(a[1], b[1])
    assert torch.equal(a[2], b[2])
    assert not torch.equal(a[1], c[1])


# --- decoding ---------------------------------------------------------------------------------


def test_pixel_coordinate_convention():
    assert pixel_to_norm(torch.tensor(0.0), 64) == pytest.approx(-1 + 1 / 64)
    assert pixel_to_norm(torch.tensor(-0.5), 64) == -1.0  # left edge of the first pixel
    assert pixel_to_norm(torch.tensor(63.5), 64) == 1.0  # right edge of the last pixel
    x = torch.tensor([3.25, 17.0])
    assert torch.allclose(norm_to_pixel(pixel_to_norm(x, 20), 20), x)
    # A single hot pixel at row 2, column 5 of a 4 x 8 map: u from the column, v from the row.
    hm = torch.zeros(1, 1, 4, 8)
    hm[0, 0, 2, 5] = 1.0
    uv = decode_heatmaps(hm)[0, 0]
    assert uv.tolist() == pytest.approx([(5.5) / 8 * 2 - 1, (2.5) / 4 * 2 - 1])


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_decode_gaussians_at_subpixel_positions(sigma):
    gen = torch.Generator().manual_seed(3)
    size = 64
    uv = torch.rand(8, 16, 2, generator=gen) * 1.8 - 0.9
    heatmaps = gaussian_heatmaps(uv, size, sigma)
    err_px = (decode_heatmaps(heatmaps) - uv).abs().max() * size / 2
    assert err_px < 0.01
    # Newell's quarter-pixel shift is the coarser reference; argmax alone is worse still.
    assert (decode_heatmaps(heatmaps, "quarter") - uv).abs().max() * size / 2 < 0.5
    assert (decode_heatmaps(heatmaps, "argmax") - uv).abs().mean() > (
        decode_heatmaps(heatmaps) - uv
    ).abs().mean()
    # With noise of 2% of the peak the shift stays well under a quarter pixel.
    noisy = heatmaps + 0.02 * torch.randn(heatmaps.shape, generator=gen)
    assert (decode_heatmaps(noisy) - uv).abs().max() * size / 2 < 0.25


def test_decode_degenerate_maps_fall_back_to_argmax():
    flat = torch.zeros(1, 2, 8, 8)
    flat[0, 1] = -1.0  # all-negative prediction
    uv = decode_heatmaps(flat)
    assert torch.isfinite(uv).all()
    assert torch.allclose(uv, torch.full_like(uv, pixel_to_norm(torch.tensor(0.0), 8).item()))
    with pytest.raises(ValueError, match="method"):
        decode_heatmaps(flat, "centroid")


# --- losses -----------------------------------------------------------------------------------


def test_loss_values_follow_the_documented_scales():
    _, targets = synthetic_batch()
    zeros = torch.zeros_like(targets["heatmaps"])
    expected_det = targets["heatmaps"].pow(2).mean(dim=(2, 3)).sum(dim=1).mean()
    assert heatmap_loss(zeros, targets["heatmaps"]) == pytest.approx(expected_det.item())
    pred_depth = targets["depth"] + 0.1
    assert regression_loss(pred_depth, targets["depth"]) == pytest.approx(16 * 0.01, rel=1e-4)
    huber = regression_loss(pred_depth, targets["depth"], "smooth_l1")
    assert huber == pytest.approx(16 * (0.1 - 0.01), rel=1e-4)

    cfg = smoke_posenet(variant="direct", reg_weight=2.0)
    outputs = {"heatmaps": [zeros, targets["heatmaps"]], "depth": pred_depth}
    total, parts = pose_loss(outputs, targets, cfg)
    assert parts["det_0"] == pytest.approx(expected_det.item())
    assert parts["det_1"] == 0
    assert total.item() == pytest.approx(expected_det.item() + 2.0 * 0.16, rel=1e-4)

    plain = smoke_posenet(variant="plain")
    total, parts = pose_loss({"uvd_crop": targets["uvd_crop"] + 0.1}, targets, plain)
    assert total.item() == pytest.approx(16 * 3 * 0.01, rel=1e-4)
    assert "det" not in parts
    with pytest.raises(KeyError, match="depth"):
        pose_loss({"heatmaps": [zeros]}, {"heatmaps": zeros}, cfg)
    with pytest.raises(ValueError, match="shape"):
        heatmap_loss(zeros[:, :3], targets["heatmaps"])


def test_hand_center_target_is_joint_mean():
    uvd = torch.arange(24, dtype=torch.float32).reshape(2, 4, 3)
    assert torch.equal(hand_center_target(uvd), uvd.mean(dim=1))
    with pytest.raises(ValueError, match=r"\(B, J, 3\)"):
        hand_center_target(uvd[0])


# --- trainability -----------------------------------------------------------------------------


def _fit(net: torch.nn.Module, loss_fn, image: torch.Tensor, steps: int = 30) -> list[float]:
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    history = []
    for _ in range(steps):
        loss = loss_fn(net(image))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


@pytest.mark.slow  # trains
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_few_steps_reduce_the_pose_loss(variant):
    image, targets = synthetic_batch()
    cfg = smoke_posenet(variant=variant)
    torch.manual_seed(0)
    net = PoseNet(cfg)
    parts_log = []

    def loss_fn(out):
        total, parts = pose_loss(out, targets, cfg)
        parts_log.append(parts)
        return total

    history = _fit(net, loss_fn, image)
    assert history[-1] < 0.2 * history[0]
    assert parts_log[-1]["reg"] < 0.5 * parts_log[0]["reg"]


def test_a_few_steps_reduce_the_location_loss():
    image, targets = synthetic_batch()
    center = hand_center_target(targets["uvd_crop"])
    torch.manual_seed(0)
    net = LocNet(smoke_locnet())
    history = _fit(net, lambda pred: location_loss(pred, center), image)
    assert history[-1] < 0.2 * history[0]


# --- wiring (autograd) --------------------------------------------------------------------------


def _outputs_and_hourglass(variant: str) -> tuple[PoseNet, dict, list, list]:
    """A smoke PoseNet's outputs plus the heatmaps and features its hourglass stack produced."""
    torch.manual_seed(0)
    net = PoseNet(smoke_posenet(variant=variant))
    captured = {}
    net.hourglass.register_forward_hook(lambda m, i, o: captured.update(out=o))
    image, _ = synthetic_batch()
    out = net(image)
    heatmaps, features = captured["out"]
    return net, out, heatmaps, features


def test_two_branch_depth_gets_no_gradient_from_the_hourglass():
    net, out, heatmaps, features = _outputs_and_hourglass("two_branch")
    grads = torch.autograd.grad(
        out["depth"].sum(), [*features, *heatmaps], allow_unused=True, retain_graph=True
    )
    assert all(g is None for g in grads)
    out["depth"].sum().backward()
    assert all(p.grad is None for p in net.hourglass.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.stem.parameters())


@pytest.mark.parametrize("variant", ["direct", "attention"])
def test_direct_and_attention_depths_depend_on_the_last_stacks_features(variant):
    net, out, _, features = _outputs_and_hourglass(variant)
    (grad,) = torch.autograd.grad(out["depth"].sum(), features[-1], retain_graph=True)
    assert grad is not None
    assert grad.abs().sum() > 0
    out["depth"].sum().backward()
    last = net.hourglass.hourglasses[-1]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in last.parameters())
    if variant == "attention":
        assert any(p.grad.abs().sum() > 0 for p in net.mask.parameters())


def test_plain_has_no_heatmaps():
    net, out, heatmaps, _ = _outputs_and_hourglass("plain")
    assert out["heatmaps"] == []
    assert heatmaps == []
    assert len(net.hourglass.heads) == 0
    assert len(net.hourglass.remap_heatmaps) == 0
    assert out["uvd_crop"].requires_grad  # all three coordinates come from the regression


# --- levers -------------------------------------------------------------------------------------


def test_zero_init_heads_start_every_heatmap_at_zero_and_can_leave_it():
    torch.manual_seed(0)
    cfg = smoke_posenet(zero_init_heads=True)
    net = PoseNet(cfg)
    image, targets = synthetic_batch()
    out = net(image)
    assert all(torch.count_nonzero(h) == 0 for h in out["heatmaps"])
    det = sum(heatmap_loss(h, targets["heatmaps"]) for h in out["heatmaps"])
    det.backward()
    # The heads get a gradient (features x error), so the zero start is not a fixed point...
    assert all(head.weight.grad.abs().sum() > 0 for head in net.hourglass.heads)
    # ...but nothing behind them does until their weights move: the first step is the heads'.
    assert all(
        p.grad is None or p.grad.abs().sum() == 0 for p in net.hourglass.hourglasses.parameters()
    )
    torch.manual_seed(0)
    default = PoseNet(smoke_posenet())
    assert all(torch.count_nonzero(h) > 0 for h in default(image)["heatmaps"])


@pytest.mark.parametrize("which", ["first", "last", "mean"])
def test_decode_stack_chooses_the_decoded_heatmaps(which):
    torch.manual_seed(0)
    net = PoseNet(smoke_posenet(decode_stack=which)).eval()
    image, _ = synthetic_batch()
    with torch.no_grad():
        out = net(image)
    stacks = out["heatmaps"]
    expected = {"first": stacks[0], "last": stacks[1], "mean": (stacks[0] + stacks[1]) / 2}[which]
    assert torch.allclose(out["uvd_crop"][..., :2], decode_heatmaps(expected))
    with pytest.raises(ValueError, match="decode_stack"):
        smoke_posenet(decode_stack="best")


def test_select_stack_rejects_unknown_choices_and_empty_lists():
    with pytest.raises(ValueError, match="which"):
        select_stack([torch.zeros(1, 1, 2, 2)], "middle")
    with pytest.raises(ValueError, match="no heatmap"):
        select_stack([], "last")


@pytest.mark.parametrize(("sigma", "tolerance_px"), [(1.0, 0.01), (2.0, 0.1)])
def test_integral_decoding_recovers_subpixel_peaks_whatever_the_scale(sigma, tolerance_px):
    gen = torch.Generator().manual_seed(3)
    uv = torch.rand(2, 5, 2, generator=gen) * 1.2 - 0.6  # away from the borders
    heatmaps = gaussian_heatmaps(uv, 32, sigma)
    decoded = integral_decode(heatmaps)
    assert norm_to_pixel(decoded, 32).sub(norm_to_pixel(uv, 32)).abs().max() < tolerance_px
    # A faint map (the plateau) decodes to the same place as a confident one.
    assert torch.allclose(decode_heatmaps(0.01 * heatmaps, "integral"), decoded, atol=1e-5)
    # Background noise far below the peak carries no weight.
    noisy = heatmaps + 0.05 * torch.rand(heatmaps.shape, generator=gen)
    assert norm_to_pixel(integral_decode(noisy), 32).sub(norm_to_pixel(uv, 32)).abs().max() < 0.3


def test_integral_decoding_is_differentiable():
    uv = torch.tensor([[[0.1, -0.2]]])
    heatmaps = gaussian_heatmaps(uv, 16, 1.5).requires_grad_(True)
    integral_decode(heatmaps).sum().backward()
    assert heatmaps.grad is not None
    assert heatmaps.grad.abs().sum() > 0
