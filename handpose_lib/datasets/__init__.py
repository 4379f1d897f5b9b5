"""Depth-frame sources: synthetic renderer, rendered published poses, ICVL and NYU files.

Every source yields `DepthFrame`s (full depth image in mm + joints in full-image uvd), so
preprocessing and the networks never know which source they are fed.
"""

from handpose_lib.datasets.frame import DepthFrame, FrameSource

__all__ = ["DepthFrame", "FrameSource"]
