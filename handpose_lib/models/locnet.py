"""Hand location estimation network (Section 3.1, Fig. 2).

Input: a (B, 1, S, S) depth crop normalized like the pose network's input but centred on the
rough centre of mass (CoM) of the hand region. Output: (B, 3) normalized offset of the true
hand centre from the crop centre, in the pose network's crop coordinates: u, v in [-1, 1]
across the crop (0 = crop centre) and d = (d_centre - d_crop_centre) / (cube_mm / 2).

The hand centre is the mean of the J joints in those normalized crop coordinates
(`hand_center_target`): every joint is labelled in both datasets, unlike a palm joint NYU's
14-joint subset lacks, and the mean is what the pose crop is centred on downstream. Fig. 2 is
not reproduced in the text we have, so the layers are a plain convolutional regressor built
from the paper's ResBlock: conv 7x7 stride 2, stride-2 ResBlocks, average pooling to a
pool x pool grid (a global pool would throw away the position it must estimate), and two
linear layers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from handpose_lib.models.blocks import ResBlock, conv_bn_relu


@dataclass(frozen=True)
class LocNetConfig:
    """input_size: S; stem_channels: width of the 7x7 stride-2 stem; stage_channels: widths
    of the stride-2 ResBlocks; pool: grid side before the linear layers; hidden: their width;
    se_reduction: r of the SE blocks."""

    input_size: int = 128
    stem_channels: int = 32
    stage_channels: tuple[int, ...] = (64, 128, 256, 256)
    pool: int = 4
    hidden: int = 512
    se_reduction: int = 16

    def __post_init__(self) -> None:
        for name in ("input_size", "stem_channels", "pool", "hidden", "se_reduction"):
            if getattr(self, name) < 1:
                raise ValueError(f"LocNetConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.stage_channels or min(self.stage_channels) < 1:
            raise ValueError(
                f"LocNetConfig.stage_channels must be non-empty positive widths, "
                f"got {self.stage_channels}"
            )
        side = self.input_size >> (1 + len(self.stage_channels))
        if self.input_size % (1 << (1 + len(self.stage_channels))) or side < self.pool:
            raise ValueError(
                f"LocNetConfig: input_size={self.input_size} must be divisible by "
                f"2**{1 + len(self.stage_channels)} and leave at least pool={self.pool} pixels"
            )


def hand_center_target(uvd_crop: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) normalized joint crop coordinates -> (B, 3) hand centre (mean of the joints)."""
    if uvd_crop.ndim != 3 or uvd_crop.shape[-1] != 3:
        raise ValueError(f"hand_center_target: expected (B, J, 3), got {tuple(uvd_crop.shape)}")
    return uvd_crop.mean(dim=1)


class LocNet(nn.Module):
    """(B, 1, S, S) CoM-centred crop -> (B, 3) normalized hand-centre offset."""

    def __init__(self, config: LocNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = (config.stem_channels, *config.stage_channels)
        self.features = nn.Sequential(
            conv_bn_relu(1, config.stem_channels, kernel=7, stride=2),
            *(
                ResBlock(a, b, stride=2, se_reduction=config.se_reduction)
                for a, b in itertools.pairwise(widths)
            ),
            nn.AdaptiveAvgPool2d(config.pool),
        )
        self.fc = nn.Sequential(
            nn.Linear(widths[-1] * config.pool**2, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, 3),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        s = self.config.input_size
        if image.ndim != 4 or tuple(image.shape[1:]) != (1, s, s):
            raise ValueError(f"LocNet: expected input (B, 1, {s}, {s}), got {tuple(image.shape)}")
        return self.fc(self.features(image).flatten(1))
