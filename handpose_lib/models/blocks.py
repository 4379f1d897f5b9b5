"""The paper's basic building block: the squeeze-and-excitation residual block.

Section 3 and 4 of the paper: "We adopt the Squeeze-and-Excitation (SE) residual block [10] ...
as our basic building block and simply denote it as *ResBlock*" and "each Resblock contains 2
convolutional layers and 1 SE block". That is the basic (not bottleneck) block of SE-ResNet
(Hu et al. 2017): conv3x3-BN-ReLU-conv3x3-BN, then SE recalibration of the residual branch
before it is added to the shortcut, then ReLU.
"""

from __future__ import annotations

import torch
from torch import nn


class SEBlock(nn.Module):
    """Channel-wise recalibration: x * sigmoid(W2 relu(W1 avgpool(x))).

    x: (B, C, H, W) -> (B, C, H, W). `reduction` is Hu et al.'s r (16 in SE-ResNet); the
    bottleneck keeps at least one unit so tiny test widths still work.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(
                f"SEBlock: channels and reduction must be >= 1, got {channels}, {reduction}"
            )
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc(x.mean(dim=(2, 3)))
        return x * scale[:, :, None, None]


class ResBlock(nn.Module):
    """SE residual block. (B, in_ch, H, W) -> (B, out_ch, H / stride, W / stride).

    The shortcut is the identity when shape is unchanged, otherwise a 1x1 (strided)
    projection with BatchNorm, as in ResNet option B.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, se_reduction: int = 16) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ResBlock: stride must be 1 or 2, got {stride}")
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            SEBlock(out_ch, se_reduction),
        )
        if in_ch == out_ch and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1) -> nn.Sequential:
    """kxk convolution + BatchNorm + ReLU with 'same' padding (Newell's `lin` layer for k=1)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )
