"""Reproduction package for Liu, Huang, Ye: "Networks effectively utilizing 2D spatial
information for accurate 3D hand pose estimation".

One module per concept; see README.md for the map.
"""

__version__ = "0.1.0"
