"""Heatmaps -> normalized 2D joint positions with sub-pixel precision.

Coordinate convention (shared with the data pipeline): u, v in [-1, 1] across the crop, -1 the
left/top edge, +1 the right/bottom edge, so the centre of pixel i of an axis with W pixels is at
(i + 0.5) / W * 2 - 1.

Default method "gaussian": argmax, then per axis a parabola through the logarithm of three
samples: the heatmap summed over the 2 * MARGINAL_HALF_WIDTH + 1 rows (for u; columns for v)
around the argmax, at the argmax column and its two neighbours. The log of a Gaussian is a
parabola and the row sum of a separable Gaussian is again a Gaussian, so for the Gaussian
targets the network is trained on this recovers the peak exactly (Zhang et al. 2020, "DARK",
use the same second-order expansion); summing rows averages out noise, which matters for wide
peaks whose neighbours differ little. Samples are floored at 1e-3 of the centre and the offset
clamped to half a pixel, so a noisy or non-Gaussian prediction moves at most half a pixel from
the argmax. "quarter" is Newell et al.'s quarter-pixel shift toward the higher neighbour,
kept for comparison. Inference only: neither is differentiable, nor meant to be.

"integral" is soft-argmax / integral decoding (Sun et al. 2018, "Integral human pose
regression"): the expected position under the heatmap normalised to a distribution. A network
trained on peak-1 Gaussians with an L2 loss does not output a distribution, so one has to be
made, and both obvious ways fail on such maps: a global softmax needs a temperature that is
either so low that it collapses onto the argmax pixel (no sub-pixel information left for a
sigma-1 peak) or so high that the ~1000 background pixels of a 32x32 map pull the answer to the
centre; normalising the whole map has the same background problem. So: the weights are the
map's positive part, max(h, 0), normalised to sum 1 over the (2 INTEGRAL_HALF_WIDTH + 1)^2
pixels around the argmax. That is scale-free (a faint map near the all-zero plateau decodes
like a confident one), recovers a Gaussian's sub-pixel centre to 0.02 px for sigma <= 1.5
and 0.08 px at sigma 2 (the window truncates wider peaks), and is differentiable in the
heatmap values (not in the window's choice). A window without positive values keeps the argmax.

`select_stack` picks which stack's heatmaps are decoded: the last (the most refined, the
default), the first, or the mean of all stacks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

METHODS = ("gaussian", "quarter", "argmax", "integral")
STACK_CHOICES = ("last", "first", "mean")
MARGINAL_HALF_WIDTH = 2
INTEGRAL_HALF_WIDTH = 4


def pixel_to_norm(pixel: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel coordinate (0 = centre of the first pixel) -> normalized [-1, 1] coordinate."""
    return (pixel + 0.5) / size * 2.0 - 1.0


def norm_to_pixel(norm: torch.Tensor, size: int) -> torch.Tensor:
    """Normalized [-1, 1] coordinate -> pixel coordinate (0 = centre of the first pixel)."""
    return (norm + 1.0) / 2.0 * size - 0.5


def _axis_offset(
    minus: torch.Tensor, centre: torch.Tensor, plus: torch.Tensor, method: str
) -> torch.Tensor:
    """Sub-pixel offset in pixels from the three samples around the maximum along one axis."""
    if method == "argmax":
        return torch.zeros_like(centre)
    if method == "quarter":
        return 0.25 * torch.sign(plus - minus)
    floor = centre.clamp_min(1e-12) * 1e-3
    lm, l0, lp = (t.clamp_min(0.0).maximum(floor).log() for t in (minus, centre, plus))
    curvature = lm - 2.0 * l0 + lp
    # A maximum has negative curvature; anything else (flat, or all values <= 0) keeps the argmax.
    ok = (curvature < -1e-9) & (centre > 0)
    offset = 0.5 * (lm - lp) / torch.where(ok, curvature, torch.ones_like(curvature))
    return torch.where(ok, offset, torch.zeros_like(offset)).clamp(-0.5, 0.5)


def _profile(hm: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """(N, H, W) maps, (N,) peak row/col -> (N, 3) sums over rows row +- MARGINAL_HALF_WIDTH
    at columns col - 1, col, col + 1 (indices clamped at the border)."""
    h, w = hm.shape[1:]
    shift = torch.arange(-1, 2, device=hm.device)
    band = torch.arange(-MARGINAL_HALF_WIDTH, MARGINAL_HALF_WIDTH + 1, device=hm.device)
    rows = (row[:, None, None] + band[None, :, None]).clamp(0, h - 1)
    cols = (col[:, None, None] + shift[None, None, :]).clamp(0, w - 1)
    n = torch.arange(hm.shape[0], device=hm.device)[:, None, None]
    return hm[n, rows, cols].sum(dim=1)


def select_stack(stacks: Sequence[torch.Tensor], which: str = "last") -> torch.Tensor:
    """Heatmaps per stack [(B, J, H, W)] -> the (B, J, H, W) maps to decode: "last",
    "first" or the "mean" over stacks."""
    if which not in STACK_CHOICES:
        raise ValueError(f"select_stack: which must be one of {STACK_CHOICES}, got {which!r}")
    if not stacks:
        raise ValueError("select_stack: no heatmap stacks to decode")
    if which == "last":
        return stacks[-1]
    if which == "first":
        return stacks[0]
    return torch.stack(list(stacks)).mean(dim=0)


def integral_decode(heatmaps: torch.Tensor, half_width: int = INTEGRAL_HALF_WIDTH) -> torch.Tensor:
    """Local soft-argmax: (B, J, H, W) -> (B, J, 2) normalized u, v, the mean position under
    max(h, 0) in the window of +-half_width pixels around each map's argmax (module
    docstring). Differentiable in the heatmap values."""
    b, j, h, w = heatmaps.shape
    hm = heatmaps.float().reshape(b * j, h, w)
    idx = hm.detach().reshape(b * j, -1).argmax(dim=1)
    row, col = idx // w, idx % w
    band = torch.arange(-half_width, half_width + 1, device=hm.device)
    rows = row[:, None] + band[None, :]  # (N, K), may leave the map
    cols = col[:, None] + band[None, :]
    inside = (rows[:, :, None] >= 0) & (rows[:, :, None] < h)
    inside = inside & (cols[:, None, :] >= 0) & (cols[:, None, :] < w)
    n = torch.arange(b * j, device=hm.device)[:, None, None]
    window = hm[n, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    weight = window.clamp_min(0.0) * inside
    total = weight.sum(dim=(1, 2))
    ok = total > 0
    weight = torch.where(ok[:, None, None], weight, torch.zeros_like(weight))
    weight[:, half_width, half_width] += (~ok).float()  # nothing positive: the argmax
    weight = weight / weight.sum(dim=(1, 2), keepdim=True)
    x = (weight.sum(dim=1) * cols.float()).sum(dim=1)
    y = (weight.sum(dim=2) * rows.float()).sum(dim=1)
    uv = torch.stack([pixel_to_norm(x, w), pixel_to_norm(y, h)], dim=-1)
    return uv.reshape(b, j, 2).to(heatmaps.dtype)


def decode_heatmaps(heatmaps: torch.Tensor, method: str = "gaussian") -> torch.Tensor:
    """(B, J, H, W) heatmaps -> (B, J, 2) u, v normalized to [-1, 1] across the crop."""
    if heatmaps.ndim != 4:
        raise ValueError(
            f"decode_heatmaps: expected (B, J, H, W), got shape {tuple(heatmaps.shape)}"
        )
    if method not in METHODS:
        raise ValueError(f"decode_heatmaps: method must be one of {METHODS}, got {method!r}")
    if method == "integral":
        return integral_decode(heatmaps)
    b, j, h, w = heatmaps.shape
    with torch.no_grad():
        hm = heatmaps.detach().float().reshape(b * j, h, w)
        idx = hm.reshape(b * j, -1).argmax(dim=1)
        y, x = idx // w, idx % w
        along_u = _profile(hm, y, x)  # (N, 3): left, centre, right of the peak
        along_v = _profile(hm.transpose(1, 2), x, y)  # (N, 3): above, centre, below
        dx = _axis_offset(along_u[:, 0], along_u[:, 1], along_u[:, 2], method)
        dy = _axis_offset(along_v[:, 0], along_v[:, 1], along_v[:, 2], method)
        # At the border one neighbour is missing: no evidence for the direction of the shift.
        dx = torch.where((x > 0) & (x < w - 1), dx, torch.zeros_like(dx))
        dy = torch.where((y > 0) & (y < h - 1), dy, torch.zeros_like(dy))
        u = pixel_to_norm(x.float() + dx, w)
        v = pixel_to_norm(y.float() + dy, h)
        return torch.stack([u, v], dim=-1).reshape(b, j, 2).to(heatmaps.dtype)
