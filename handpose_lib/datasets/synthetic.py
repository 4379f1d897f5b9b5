"""Procedural depth hands in the ICVL joint layout: the package's no-download data.

`SyntheticSource` draws a hand (`hand_model`: forward kinematics with anatomical joint
limits, per-sample bone lengths, a random placement in the camera frustum) and renders it
(`hand_render`: capsules, palm slab and forearm, then a sensor model); `write_icvl_split`
writes frames of any ICVL-layout source as the ICVL distribution does. The names of
`hand_model` and `hand_render` are importable from here too.

Frame `i` of a source depends only on `(seed, i)`: frames can be rendered lazily, in any
order or in parallel and are identical each time.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from handpose_lib.camera import ICVL
from handpose_lib.datasets import icvl
from handpose_lib.datasets.frame import DepthFrame, FrameSource
from handpose_lib.datasets.hand_model import (
    FINGER_ROOTS,
    MAX_HAND_ATTEMPTS,
    NOMINAL_BONE_MM,
    NOMINAL_FOREARM_RADIUS_MM,
    NOMINAL_PALM_HALF_THICKNESS_MM,
    NOMINAL_RADIUS_MM,
    NOMINAL_WRIST_CORNERS_MM,
    NUM_JOINTS,
    PALM,
    PARENT,
    REST_SPLAY_DEG,
    ROOT_DIRECTION,
    THUMB_BASE_AZIMUTH_DEG,
    THUMB_M,
    THUMB_R,
    THUMB_T,
    HandPose,
    HandShape,
    JointLimits,
    SyntheticHand,
    SyntheticHandConfig,
    forward_kinematics,
    place_in_frustum,
    sample_bone_lengths,
    sample_hand,
    sample_pose,
    sample_rotation,
    sample_shape,
)
from handpose_lib.datasets.hand_render import (
    CAPSULE_JOINTS,
    FOREARM_HALF_SPREAD,
    HandGeometry,
    apply_sensor,
    forearm_direction,
    hand_frame,
    hand_geometry,
    render_depth,
    render_frame,
    render_geometry,
)
from handpose_lib.datasets.parallel import map_in_chunks
from handpose_lib.datasets.scene import SCENE_STREAM, SceneConfig

__all__ = [
    "CAPSULE_JOINTS",
    "FINGER_ROOTS",
    "FOREARM_HALF_SPREAD",
    "MAX_HAND_ATTEMPTS",
    "NOMINAL_BONE_MM",
    "NOMINAL_FOREARM_RADIUS_MM",
    "NOMINAL_PALM_HALF_THICKNESS_MM",
    "NOMINAL_RADIUS_MM",
    "NOMINAL_WRIST_CORNERS_MM",
    "NUM_JOINTS",
    "PALM",
    "PARENT",
    "REST_SPLAY_DEG",
    "ROOT_DIRECTION",
    "THUMB_BASE_AZIMUTH_DEG",
    "THUMB_M",
    "THUMB_R",
    "THUMB_T",
    "HandGeometry",
    "HandPose",
    "HandShape",
    "JointLimits",
    "SyntheticHand",
    "SyntheticHandConfig",
    "SyntheticSource",
    "apply_sensor",
    "check_index",
    "check_seed",
    "forearm_direction",
    "forward_kinematics",
    "frame_rng",
    "hand_frame",
    "hand_geometry",
    "place_in_frustum",
    "render_depth",
    "render_frame",
    "render_geometry",
    "sample_bone_lengths",
    "sample_hand",
    "sample_pose",
    "sample_rotation",
    "sample_shape",
    "write_icvl_split",
]

# ------------------------------------------------------------------------------ sources


def frame_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of frame `index`: a function of (seed, index, stream) only."""
    return np.random.default_rng([stream, seed, index])


def check_seed(seed: int) -> int:
    """`seed` as an int; a clear error unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_source_args(
    num_frames: int, config: SyntheticHandConfig | None, scene: SceneConfig | None
) -> int:
    """`num_frames` as an int after checking a synthetic source's arguments; clear errors for
    a non-integer or non-positive frame count and a config or scene of the wrong type."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int | np.integer):
        raise ValueError(f"num_frames must be an integer, got {num_frames!r}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if config is not None and not isinstance(config, SyntheticHandConfig):
        raise ValueError(f"config must be a SyntheticHandConfig, got {type(config).__name__}")
    if scene is not None and not isinstance(scene, SceneConfig):
        raise ValueError(f"scene must be a SceneConfig, got {type(scene).__name__}")
    return int(num_frames)


def check_index(index: int, length: int, what: str) -> int:
    """`index` as a non-negative int in [0, length); negative indices count from the end."""
    try:
        index = operator.index(index)
    except TypeError:
        raise TypeError(f"{what} index must be an integer, got {index!r}") from None
    if not -length <= index < length:
        raise IndexError(f"{what} index {index} out of range for {length} frames")
    return index % length


class SyntheticSource:
    """`num_frames` procedural hands (ICVL layout and camera) rendered on demand.

    Frame i depends only on (seed, i). Labels are rounded to 3 decimals, as in an ICVL
    label file, so frames read back from `write_icvl_split` are identical to these.
    `scene` (e.g. `scene.LOCALIZATION_SCENE`) adds a torso / wall behind the hand and a forearm
    reaching the frame edge; None renders the hand alone, as before scenes existed.
    """

    dataset = "icvl"
    camera = ICVL

    def __init__(
        self,
        num_frames: int,
        seed: int = 0,
        config: SyntheticHandConfig | None = None,
        scene: SceneConfig | None = None,
    ) -> None:
        self.num_frames = check_source_args(num_frames, config, scene)
        self.seed = check_seed(seed)
        self.config = config or SyntheticHandConfig()
        self.scene = scene

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        scene = "" if self.scene is None else f", scene={self.scene}"
        return f"SyntheticSource(num_frames={self.num_frames}, seed={self.seed}{scene})"

    def name(self, index: int) -> str:
        return f"synthetic/image_{check_index(index, len(self), 'SyntheticSource'):06d}.png"

    def hand(self, index: int) -> SyntheticHand:
        """The sampled hand of frame `index` (pose, skeleton, shape, joints)."""
        index = check_index(index, len(self), "SyntheticSource")
        return sample_hand(frame_rng(self.seed, index), self.config, self.camera)

    def __getitem__(self, index: int) -> DepthFrame:
        index = check_index(index, len(self), "SyntheticSource")
        key = (type(self), self.camera, self.seed, index, self.config, self.scene)
        kept = _RENDERED.get(key)
        if kept is not None:
            depth, uvd = kept
            return DepthFrame(depth.copy(), uvd.copy(), self.camera, self.name(index))
        rng = frame_rng(self.seed, index)
        hand = sample_hand(rng, self.config, self.camera)
        depth = render_frame(
            hand.joints_xyz_mm,
            hand.shape,
            rng,
            self.config,
            self.camera,
            self.scene,
            frame_rng(self.seed, index, SCENE_STREAM),
        )
        uvd = np.round(self.camera.xyz_to_uvd(hand.joints_xyz_mm), 3)
        _keep_rendered(key, depth, uvd, len(self))
        return DepthFrame(depth, uvd, self.camera, self.name(index))


# Frame i depends only on (seed, i, config, scene), and rendering one costs about 4 ms: a
# training renders each frame again every epoch, validates on the same frames every epoch,
# and notebook 04 trains eight runs on one set of frames. So a process keeps the frames of a
# source small enough to keep whole (within RENDER_MEMO_BYTES, about 400 frames of 240 x 320,
# for all sources together) and hands out copies; the frames of a larger source, which a
# training would rarely revisit before the memo filled, are rendered every time.
RENDER_MEMO_BYTES = 128 * 2**20
_RENDERED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_rendered_bytes = 0


def _keep_rendered(key: tuple, depth: np.ndarray, uvd: np.ndarray, source_frames: int) -> None:
    global _rendered_bytes
    size = depth.nbytes + uvd.nbytes
    if source_frames * size <= RENDER_MEMO_BYTES and _rendered_bytes + size <= RENDER_MEMO_BYTES:
        _RENDERED[key] = (depth.copy(), uvd.copy())
        _rendered_bytes += size


def clear_render_memo() -> None:
    """Forget the frames this process rendered (they are rendered again on the next read)."""
    global _rendered_bytes
    _RENDERED.clear()
    _rendered_bytes = 0


# ------------------------------------------------------------------------- on-disk split


def _check_frame_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or " " in name:
        raise ValueError(
            f"frame name {name!r}: expected a relative path without spaces or '..' "
            "(it is written under Depth/ and into the label file)"
        )
    return name


def _write_frames(
    source: FrameSource, root: Path, indices: Sequence[int]
) -> list[tuple[str, np.ndarray]]:
    out = []
    for index in indices:
        frame = source[index]
        name = _check_frame_name(frame.name)
        icvl.write_depth_png(root / "Depth" / name, frame.depth_mm)
        out.append((name, frame.uvd))
    return out


def write_icvl_split(
    root: str | os.PathLike,
    source: FrameSource,
    label_file: str = "labels.txt",
    indices: Sequence[int] | None = None,
    workers: int = 1,
) -> Path:
    """Write frames of an ICVL-layout source as the ICVL distribution does: 16-bit PNGs at
    `root/Depth/<frame name>` and one label file `root/<label_file>` (e.g. "labels.txt"
    for training, "test_seq_1.txt" for a test sequence). Returns the label file's path.

    `indices` selects frames (default: all, in order); `workers` > 1 renders in that many
    processes (the source must be picklable) with identical output."""
    if getattr(source, "dataset", None) != "icvl":
        raise ValueError(f"write_icvl_split needs an ICVL-layout source, got {source!r}")
    label_path = PurePosixPath(label_file)
    if label_path.is_absolute() or ".." in label_path.parts or not label_file.endswith(".txt"):
        raise ValueError(f"label_file {label_file!r}: expected a relative '*.txt' path")
    n = len(source)
    indices = list(range(n)) if indices is None else [check_index(i, n, "split") for i in indices]
    if not indices or len(set(indices)) != len(indices):
        raise ValueError("write_icvl_split: indices must be non-empty and without repeats")
    root = Path(root)
    written = map_in_chunks(_write_frames, source, root, indices, workers)
    names = [name for name, _ in written]
    if len(set(names)) != len(names):
        raise ValueError("write_icvl_split: frame names repeat; every frame needs its own file")
    return icvl.write_label_file(root / label_file, names, np.stack([uvd for _, uvd in written]))
