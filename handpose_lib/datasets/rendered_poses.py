"""The 1596 published ICVL test poses, rendered as synthetic depth frames.

Ground truth, metric and frame order are those of the published ICVL test set, so the
Table 1 protocol applies to models trained on synthetic data. Only the images are ours:
the hand of `hand_render.render_depth` is built directly on the labelled joints (capsules
between them, palm slab spanning Palm and finger roots, forearm away from the fingers),
with per-frame thickness, wrist bend and sensor noise drawn from (seed, frame index).
"""

from __future__ import annotations

import os

import numpy as np

from handpose_lib.camera import ICVL
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.hand_model import (
    FINGER_ROOTS,
    NOMINAL_BONE_MM,
    NUM_JOINTS,
    PALM,
    SyntheticHandConfig,
    sample_shape,
)
from handpose_lib.datasets.hand_render import render_frame
from handpose_lib.datasets.scene import SCENE_STREAM, SceneConfig
from handpose_lib.datasets.synthetic import check_index, check_seed, frame_rng
from handpose_lib.published import load_labels, load_test_list

# Keeps this source's random streams apart from SyntheticSource's for the same seed.
RENDERED_POSES_STREAM = 1


def hand_scale_of(joints_xyz: np.ndarray) -> float:
    """Size of a labelled hand relative to the nominal one (Palm -> middle root), used to
    size its thickness; clipped to a plausible human range."""
    palm_length = np.linalg.norm(joints_xyz[FINGER_ROOTS[1]] - joints_xyz[PALM])
    return float(np.clip(palm_length / NOMINAL_BONE_MM[FINGER_ROOTS[1]], 0.7, 1.4))


class RenderedPosesSource:
    """Frames rendered on given ICVL-layout poses; by default the published test labels.

    uvd:   (N, 16, 3) ICVL-camera joints (pixels, mm); None loads `load_labels("icvl")`
           (from HANDPOSE_PUBLISHED_DIR or `local_dir`).
    names: frame names; default "rendered/<published test image name>" for the published
           labels, "rendered/image_<i>.png" for given uvd.
    Labels are returned exactly as given, in the given order. `scene` as in SyntheticSource.
    """

    dataset = "icvl"
    camera = ICVL

    def __init__(
        self,
        seed: int = 0,
        uvd: np.ndarray | None = None,
        config: SyntheticHandConfig | None = None,
        names: list[str] | None = None,
        local_dir: str | os.PathLike | None = None,
        scene: SceneConfig | None = None,
    ) -> None:
        if config is not None and not isinstance(config, SyntheticHandConfig):
            raise ValueError(f"config must be a SyntheticHandConfig, got {type(config).__name__}")
        if uvd is None:
            uvd = load_labels("icvl", local_dir=local_dir)
            if names is None:
                names = ["rendered/" + n for n in load_test_list("icvl", local_dir=local_dir)]
        uvd = np.asarray(uvd, dtype=np.float64)
        if uvd.ndim != 3 or uvd.shape[1:] != (NUM_JOINTS, 3) or len(uvd) == 0:
            raise ValueError(
                f"uvd must have shape (N, {NUM_JOINTS}, 3) with N >= 1, got {uvd.shape}"
            )
        if not np.all(np.isfinite(uvd)) or np.any(uvd[..., 2] <= 0):
            bad = np.flatnonzero(~np.all(np.isfinite(uvd) & (uvd[..., 2:] > 0), axis=(1, 2)))
            raise ValueError(f"uvd frames {bad[:5].tolist()}: need finite values and depth > 0 mm")
        if names is None:
            names = [f"rendered/image_{i:06d}.png" for i in range(len(uvd))]
        if len(names) != len(uvd):
            raise ValueError(f"{len(names)} names for {len(uvd)} frames; need one name per frame")
        self.seed = check_seed(seed)
        self.uvd = uvd
        self.names = list(names)
        self.config = config or SyntheticHandConfig()
        if scene is not None and not isinstance(scene, SceneConfig):
            raise ValueError(f"scene must be a SceneConfig, got {type(scene).__name__}")
        self.scene = scene

    def __len__(self) -> int:
        return len(self.uvd)

    def __repr__(self) -> str:
        return f"RenderedPosesSource(seed={self.seed}, frames={len(self)})"

    def __getitem__(self, index: int) -> DepthFrame:
        index = check_index(index, len(self), "RenderedPosesSource")
        rng = frame_rng(self.seed, index, RENDERED_POSES_STREAM)
        uvd = self.uvd[index]
        joints_xyz = self.camera.uvd_to_xyz(uvd)
        shape = sample_shape(rng, self.config, hand_scale_of(joints_xyz))
        scene_rng = frame_rng(self.seed, index, SCENE_STREAM)
        depth = render_frame(
            joints_xyz, shape, rng, self.config, self.camera, self.scene, scene_rng
        )
        return DepthFrame(depth, uvd.copy(), self.camera, self.names[index])
