"""Procedural hands seen by NYU's Kinect: the synthetic renderer with NYU's camera and labels.

The renderer's hand has ICVL's 16 joints; NYU labels 36 points per hand (six per finger from
tip to base, then palm and wrist points), of which the community protocol evaluates 14
(`joints.NYU_EVAL_JOINT_IDS`). `icvl_to_nyu36` builds the 36 points from the 16: each
evaluated NYU joint sits on the ICVL joint it names (tips on tips, NYU's finger "R" point, label
3 of 6, on the middle joint, thumb R2 / R1 on thumb mid / root, the NYU Palm between ICVL's Palm
and the middle-finger root, the two wrist points on either side of ICVL's Palm), the others are
interpolated along the bones. Frames and labels are what `writers.write_nyu_split` needs to lay
out an NYU-format dataset, and what `NyuSource` reads back.
"""

from __future__ import annotations

import numpy as np

from handpose_lib.camera import NYU
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.hand_model import (
    FINGER_ROOTS,
    PALM,
    THUMB_M,
    THUMB_R,
    THUMB_T,
    SyntheticHand,
    SyntheticHandConfig,
    sample_hand,
)
from handpose_lib.datasets.hand_render import hand_frame, render_frame
from handpose_lib.datasets.scene import SCENE_STREAM, SceneConfig
from handpose_lib.datasets.synthetic import (
    check_index,
    check_seed,
    check_source_args,
    frame_rng,
)
from handpose_lib.joints import NYU_EVAL_JOINT_IDS

# NYU's joint_names of joint_data.mat: fingers pinky (F1) .. index (F4), thumb (TH), each tip
# to base, then palm / wrist points.
NYU_LABEL_NAMES: tuple[str, ...] = (
    *tuple(
        f"{finger}_{point}"
        for finger in ("F1", "F2", "F3", "F4", "TH")
        for point in ("KNU3_A", "KNU3_B", "KNU2_A", "KNU2_B", "KNU1_A", "KNU1_B")
    ),
    "PALM_1",
    "PALM_2",
    "PALM_3",
    "PALM_4",
    "PALM_5",
    "PALM_6",
)

WRIST_HALF_WIDTH_MM = 20.0
# Kinect v1 working range of the NYU recordings (V2V-PoseNet data.lua: joints 350-1080 mm).
NYU_HAND_CONFIG = SyntheticHandConfig(distance_mm=(450.0, 1000.0))


def _lerp(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    return a + (b - a) * s


def icvl_to_nyu36(xyz16: np.ndarray) -> np.ndarray:
    """(16, 3) ICVL-layout joints -> (36, 3) NYU label points (same units and camera)."""
    xyz16 = np.asarray(xyz16, dtype=np.float64)
    out = np.empty((36, 3))
    fingers = list(reversed(FINGER_ROOTS))  # NYU order: pinky, ring, middle, index
    for f, root in enumerate(fingers):
        r, m, t = xyz16[root], xyz16[root + 1], xyz16[root + 2]
        out[6 * f : 6 * f + 6] = [t, _lerp(t, m, 1 / 3), _lerp(t, m, 2 / 3), m, _lerp(m, r, 0.5), r]
    t, m, r, palm = xyz16[THUMB_T], xyz16[THUMB_M], xyz16[THUMB_R], xyz16[PALM]
    out[24:30] = [t, m, _lerp(m, r, 0.5), r, _lerp(r, palm, 0.5), palm]
    lateral, _, _ = hand_frame(xyz16)
    out[30] = palm + WRIST_HALF_WIDTH_MM * lateral  # Wrist2
    out[31] = palm - WRIST_HALF_WIDTH_MM * lateral  # Wrist1
    out[32:36] = _lerp(palm, xyz16[FINGER_ROOTS[1]], 0.5)  # Palm (and the unused palm points)
    return out


class SyntheticNyuSource:
    """`num_frames` procedural hands in NYU's camera (640x480, y up) with NYU's 14 evaluated
    joints; frame i depends only on (seed, i). `scene` as in `SyntheticSource` (NYU frames
    show the body behind the hand: `SceneConfig(background=True)`)."""

    dataset = "nyu"
    camera = NYU

    def __init__(
        self,
        num_frames: int,
        seed: int = 0,
        config: SyntheticHandConfig | None = None,
        scene: SceneConfig | None = None,
    ) -> None:
        self.num_frames = check_source_args(num_frames, config, scene)
        self.seed = check_seed(seed)
        self.config = config or NYU_HAND_CONFIG
        self.scene = scene

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return f"SyntheticNyuSource(num_frames={self.num_frames}, seed={self.seed})"

    def hand(self, index: int) -> SyntheticHand:
        index = check_index(index, len(self), "SyntheticNyuSource")
        return sample_hand(frame_rng(self.seed, index), self.config, self.camera)

    def joint_xyz36(self, index: int) -> np.ndarray:
        """(36, 3) NYU label points of frame `index` in camera-space mm (y up)."""
        return icvl_to_nyu36(self.hand(index).joints_xyz_mm)

    def __getitem__(self, index: int) -> DepthFrame:
        index = check_index(index, len(self), "SyntheticNyuSource")
        rng = frame_rng(self.seed, index)
        hand = sample_hand(rng, self.config, self.camera)
        scene_rng = frame_rng(self.seed, index, SCENE_STREAM)
        depth = render_frame(
            hand.joints_xyz_mm, hand.shape, rng, self.config, self.camera, self.scene, scene_rng
        )
        xyz14 = icvl_to_nyu36(hand.joints_xyz_mm)[list(NYU_EVAL_JOINT_IDS)]
        name = f"synthetic_nyu/depth_1_{index + 1:07d}.png"
        return DepthFrame(depth, self.camera.xyz_to_uvd(xyz14), self.camera, name)
