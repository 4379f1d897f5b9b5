"""The pose estimation network of Fig. 1 and the three baselines of Section 4.1.

All four variants share one backbone: shallow layers (input S x S -> C feature maps at S/2)
followed by `num_stacks` stacked hourglasses. They differ in what the depth regression sees:

- "plain":      one-task baseline 1). No heatmap heads; the regression head reads the last
                stack's output features and regresses all of uvd_crop (B, J, 3).
- "two_branch": baseline 2). 2D detection with heatmaps, depth regressed from the raw shallow
                features (the two branches only share the shallow layers).
- "direct":     baseline 3). Depth regressed from the output feature maps of the detection
                modules (the last stack's features).
- "attention":  the paper's model, Eq. 3: F_reg = M * F_raw, see `PoseNet` for M.

Heatmap variants decode u, v from the last stack's heatmaps (`handpose_lib.decode`; the config's
`decode_stack` may choose the first or the mean instead) and take d from the regression.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from handpose_lib.decode import METHODS, STACK_CHOICES, decode_heatmaps, select_stack
from handpose_lib.models.blocks import ResBlock, conv_bn_relu
from handpose_lib.models.hourglass import StackedHourglass

VARIANTS = ("plain", "two_branch", "direct", "attention")
REG_LOSSES = ("l2", "smooth_l1")
DET_REDUCTIONS = ("mean", "sum", "mse")


@dataclass(frozen=True)
class PoseNetConfig:
    """Architecture and loss settings of `PoseNet`.

    input_size:      S, side of the (1, S, S) depth crop.
    heatmap_size:    side of heatmaps and hourglass features; the stem has stride 2, so S / 2.
    channels:        C, width of the shallow features and of every hourglass layer.
    hourglass_depth: number of 2x downsamplings inside one hourglass.
    se_reduction:    r of the SE blocks.
    reg_channels, reg_blocks: width and number of stride-2 ResBlocks of the regression head.
    reg_pool:        side of the grid the head average-pools to before its two linear layers
                     (1 = global pooling). A coarse grid keeps where things are, which the
                     plain baseline needs to regress u, v.
    reg_hidden:      width of the head's hidden linear layer.
    reg_weight:      weight of the regression term in the loss (Eq. 1 has 1).
    reg_loss:        "l2" or "smooth_l1" on normalized depths (plain: on uvd_crop).
    det_reduction:   how Eq. 2 reduces over the H x W pixels of a joint's heatmap: "mean"
                     (resolution-independent, the default), "sum" (the squared L2 distance
                     as the paper writes it; H x W times larger, e.g. 4096 x at 64 x 64) or
                     "mse" (PyTorch's `MSELoss()`: the mean over joints too, J x smaller than
                     "mean").
    zero_init_heads: start the 1x1 heatmap heads at weight 0, bias 0, so every predicted
                     heatmap starts exactly at 0 instead of at random values.
    decode_method:   heatmap decoding, see `handpose_lib.decode` ("gaussian", "quarter",
                     "argmax", "integral").
    decode_stack:    which stack's heatmaps give u, v: "last", "first" or "mean" of all.
    """

    num_joints: int = 16
    variant: str = "attention"
    input_size: int = 128
    heatmap_size: int = 64
    channels: int = 128
    num_stacks: int = 2
    hourglass_depth: int = 4
    se_reduction: int = 16
    reg_channels: int = 128
    reg_blocks: int = 4
    reg_pool: int = 4
    reg_hidden: int = 256
    reg_weight: float = 1.0
    reg_loss: str = "l2"
    decode_method: str = "gaussian"
    det_reduction: str = "mean"
    zero_init_heads: bool = False
    decode_stack: str = "last"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise ValueError(f"PoseNetConfig.{f.name} must be >= 1, got {value}")
        if self.variant not in VARIANTS:
            raise ValueError(
                f"PoseNetConfig.variant must be one of {VARIANTS}, got {self.variant!r}"
            )
        if self.reg_loss not in REG_LOSSES:
            raise ValueError(
                f"PoseNetConfig.reg_loss must be one of {REG_LOSSES}, got {self.reg_loss!r}"
            )
        if self.decode_method not in METHODS:
            raise ValueError(
                f"PoseNetConfig.decode_method must be one of {METHODS}, got {self.decode_method!r}"
            )
        if self.input_size != 2 * self.heatmap_size:
            raise ValueError(
                f"PoseNetConfig: heatmap_size must be input_size / 2 (stride-2 stem), got "
                f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
            )
        if self.heatmap_size % (1 << self.hourglass_depth):
            raise ValueError(
                f"PoseNetConfig: heatmap_size={self.heatmap_size} must be divisible by "
                f"2**hourglass_depth={1 << self.hourglass_depth}"
            )
        if (self.heatmap_size >> self.reg_blocks) < self.reg_pool:
            raise ValueError(
                f"PoseNetConfig: heatmap_size / 2**reg_blocks = "
                f"{self.heatmap_size / (1 << self.reg_blocks)} is smaller than "
                f"reg_pool={self.reg_pool}"
            )
        if self.reg_weight < 0:
            raise ValueError(f"PoseNetConfig.reg_weight must be >= 0, got {self.reg_weight}")
        for name, allowed in (
            ("det_reduction", DET_REDUCTIONS),
            ("decode_stack", STACK_CHOICES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"PoseNetConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )

    @property
    def uses_heatmaps(self) -> bool:
        return self.variant != "plain"


class RegressionHead(nn.Module):
    """Stride-2 ResBlocks, average pooling to a pool x pool grid, linear-ReLU-linear.

    (B, in_ch, H, W) -> (B, out_features).
    """

    def __init__(
        self,
        in_ch: int,
        channels: int,
        blocks: int,
        pool: int,
        hidden: int,
        out_features: int,
        se_reduction: int = 16,
    ) -> None:
        super().__init__()
        widths = [in_ch] + [channels] * blocks
        self.convs = nn.Sequential(
            *(
                ResBlock(a, b, stride=2, se_reduction=se_reduction)
                for a, b in itertools.pairwise(widths)
            )
        )
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc = nn.Sequential(
            nn.Linear(channels * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.convs(x)).flatten(1))


class PoseNet(nn.Module):
    """Fig. 1: shallow layers, stacked hourglasses for 2D detection, depth regression.

    Shallow layers (as Newell's pre-hourglass stem, minus the pooling that the 128 px input
    makes unnecessary): conv 7x7 stride 2 to C/2 channels + BN + ReLU, ResBlock C/2 -> C,
    ResBlock C -> C. They give F_raw, (B, C, S/2, S/2).

    Attention mask of Eq. 3 ("M_i(x) is obtained by normalizing the output feature maps of 2D
    joints detection modules"): M = sigmoid(BN(conv1x1(F_out))), with F_out the output feature
    maps of the last hourglass stack (the C maps its heatmaps are predicted from, after the
    post-hourglass ResBlock and 1x1 conv-BN-ReLU). Reasons:
    - Eq. 3 pairs mask i with shallow map i, so there must be C masks: they come from the C
      feature maps of the detection module (also C = 128 at paper size), not from its J heatmaps.
    - F_out is post-ReLU (>= 0), so a bare sigmoid would only reach [0.5, 1); the learned 1x1
      conv + BN lets each mask use all of (0, 1) and, at initialisation, centres it at 0.5.
    - A sigmoid weights every position independently in (0, 1) ("weight the element-wise values
      of shallow feature maps"); a spatial softmax would make each mask sum to one over
      H x W, scaling the masked features by ~1 / (H W) and sending gradients to almost zero.
    - The last stack is the most refined detection; earlier stacks are supervised but their
      features feed the next stack already.
    Gradients of the regression loss flow through M into the hourglasses (one model, Eq. 1).
    """

    def __init__(self, config: PoseNetConfig) -> None:
        super().__init__()
        self.config = config
        c, r = config.channels, config.se_reduction
        self.stem = nn.Sequential(
            conv_bn_relu(1, max(1, c // 2), kernel=7, stride=2),
            ResBlock(max(1, c // 2), c, se_reduction=r),
            ResBlock(c, c, se_reduction=r),
        )
        self.hourglass = StackedHourglass(
            config.num_stacks,
            c,
            config.num_joints,
            config.hourglass_depth,
            se_reduction=r,
            with_heatmaps=config.uses_heatmaps,
            zero_init_heads=config.zero_init_heads,
        )
        if config.variant == "attention":
            self.mask = nn.Sequential(
                nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.Sigmoid()
            )
        out_per_joint = 3 if config.variant == "plain" else 1
        self.regression = RegressionHead(
            c,
            config.reg_channels,
            config.reg_blocks,
            config.reg_pool,
            config.reg_hidden,
            config.num_joints * out_per_joint,
            se_reduction=r,
        )

    def forward(self, image: torch.Tensor, decode: bool = True) -> dict[str, Any]:
        """(B, 1, S, S) normalized depth crop -> dict.

        `decode=False` (training: Eq. 1 reads only 'heatmaps' and 'depth') skips decoding the
        heatmaps, so 'uvd_crop' is left out for the heatmap variants.

        'heatmaps': list over stacks of (B, J, S/2, S/2) (empty for "plain");
        'depth':    (B, J) normalized joint depths;
        'uvd_crop': (B, J, 3) normalized crop coordinates; for heatmap variants u, v are
                    decoded from the `decode_stack` heatmaps (no gradient, except with
                    "integral" decoding) and d is 'depth';
        'attention': (B, C, S/2, S/2) masks in (0, 1), "attention" variant only.
        """
        cfg = self.config
        expected = (1, cfg.input_size, cfg.input_size)
        if image.ndim != 4 or tuple(image.shape[1:]) != expected:
            raise ValueError(
                f"PoseNet: expected input (B, {', '.join(map(str, expected))}), "
                f"got {tuple(image.shape)}"
            )
        shallow = self.stem(image)
        heatmaps, features = self.hourglass(shallow)
        out: dict[str, Any] = {"heatmaps": heatmaps}
        if cfg.variant == "plain":
            uvd = self.regression(features[-1]).view(-1, cfg.num_joints, 3)
            out.update(depth=uvd[..., 2], uvd_crop=uvd)
            return out
        if cfg.variant == "two_branch":
            reg_input = shallow
        elif cfg.variant == "direct":
            reg_input = features[-1]
        else:
            mask = self.mask(features[-1])
            out["attention"] = mask
            reg_input = mask * shallow
        depth = self.regression(reg_input)
        out["depth"] = depth
        if decode:
            uv = decode_heatmaps(select_stack(heatmaps, cfg.decode_stack), cfg.decode_method)
            out["uvd_crop"] = torch.cat([uv, depth[..., None]], dim=-1)
        return out
