"""Hourglass module and stacked hourglasses with intermediate supervision (Newell et al. 2016).

The paper: "The structure of stacked hourglass networks used to detect 2D joints in our method
is the same as illustrated in [11]", with SE ResBlocks in place of Newell's bottleneck residual
modules, 128 channels at every layer and 64x64 input/output resolution (Fig. 1 caption).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from handpose_lib.models.blocks import ResBlock, conv_bn_relu


class Hourglass(nn.Module):
    """Recursive hourglass. (B, C, H, W) -> (B, C, H, W); H and W divisible by 2**depth.

    At every level: an upper branch (one ResBlock at the current scale) plus a lower branch
    (max-pool, ResBlock, the next-deeper hourglass or a ResBlock at the bottom, ResBlock,
    nearest-neighbour upsampling), summed -- exactly Newell's `hourglass(n, f, inp)`.
    """

    def __init__(self, depth: int, channels: int, se_reduction: int = 16) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"Hourglass: depth must be >= 1, got {depth}")
        self.depth = depth
        self.up1 = ResBlock(channels, channels, se_reduction=se_reduction)
        self.low1 = ResBlock(channels, channels, se_reduction=se_reduction)
        self.low2: nn.Module = (
            Hourglass(depth - 1, channels, se_reduction)
            if depth > 1
            else ResBlock(channels, channels, se_reduction=se_reduction)
        )
        self.low3 = ResBlock(channels, channels, se_reduction=se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % (1 << self.depth) or x.shape[-1] % (1 << self.depth):
            raise ValueError(
                f"Hourglass: spatial size {tuple(x.shape[-2:])} must be divisible by "
                f"2**depth = {1 << self.depth}"
            )
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up1(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
    """`num_stacks` hourglasses with Newell's per-stack head and remap.

    Per stack: hourglass -> ResBlock -> 1x1 conv-BN-ReLU = the stack's output feature maps
    (B, C, H, W); a 1x1 conv on them gives the J heatmaps (B, J, H, W). Between stacks the input
    of the next stack is x + conv1x1(features) + conv1x1(heatmaps). With `with_heatmaps=False`
    (the one-task "plain" baseline) there are no heatmap heads and the remap uses the
    features only. `zero_init_heads` starts the heads' weights and biases at 0.
    """

    def __init__(
        self,
        num_stacks: int,
        channels: int,
        num_joints: int,
        depth: int,
        se_reduction: int = 16,
        with_heatmaps: bool = True,
        zero_init_heads: bool = False,
    ) -> None:
        super().__init__()
        if num_stacks < 1:
            raise ValueError(f"StackedHourglass: num_stacks must be >= 1, got {num_stacks}")
        self.with_heatmaps = with_heatmaps
        self.hourglasses = nn.ModuleList(
            Hourglass(depth, channels, se_reduction) for _ in range(num_stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(
                ResBlock(channels, channels, se_reduction=se_reduction),
                conv_bn_relu(channels, channels),
            )
            for _ in range(num_stacks)
        )
        heads = [
            nn.Conv2d(channels, num_joints, 1) for _ in range(num_stacks if with_heatmaps else 0)
        ]
        if zero_init_heads:
            # Every heatmap starts exactly at 0; the heads' weights still get gradients
            # (features x error), but the backbone gets none from L_det until they move.
            for conv in heads:
                assert conv.bias is not None  # Conv2d has a bias by default
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.heads = nn.ModuleList(heads)
        self.remap_features = nn.ModuleList(
            nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1)
        )
        self.remap_heatmaps = nn.ModuleList(
            nn.Conv2d(num_joints, channels, 1)
            for _ in range(num_stacks - 1 if with_heatmaps else 0)
        )

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(B, C, H, W) -> (heatmaps per stack [(B, J, H, W)], features per stack [(B, C, H, W)]).

        The heatmap list is empty when `with_heatmaps` is False.
        """
        heatmaps: list[torch.Tensor] = []
        features: list[torch.Tensor] = []
        last = len(self.hourglasses) - 1
        for i, (hourglass, head) in enumerate(zip(self.hourglasses, self.features, strict=True)):
            feat = head(hourglass(x))
            features.append(feat)
            if self.with_heatmaps:
                heatmaps.append(self.heads[i](feat))
            if i < last:
                x = x + self.remap_features[i](feat)
                if self.with_heatmaps:
                    x = x + self.remap_heatmaps[i](heatmaps[-1])
        return heatmaps, features
