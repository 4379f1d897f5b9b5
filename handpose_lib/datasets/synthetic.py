"""Procedural depth hand in the ICVL joint layout: the package's no-download data.

A hand skeleton (16 ICVL joints) comes from forward kinematics with anatomical joint
limits, per-sample bone lengths and a random placement in the camera frustum. One shared
renderer turns joints into a 320x240 depth frame: capsules for the finger bones, a
rounded slab for the palm and a forearm that leaves the image (so the centre of mass of a
depth-segmented hand is pulled toward the arm, as in real data). A sensor model adds
noise, edge dropout and whole-millimetre quantization.

Frame `i` of a source depends only on `(seed, i)`: frames can be rendered lazily, in any
order or in parallel and are identical each time.

Local hand frame used by the kinematics (mm, origin at the Palm joint): +x runs across
the palm from the index toward the pinky, +y points from the palm toward the fingers and
+z is the palm normal on the palmar side (fingers flex toward +z). The template is the
median ICVL test hand expressed in that frame.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path, PurePosixPath

import numpy as np

from handpose_lib.camera import ICVL, Camera
from handpose_lib.datasets import icvl
from handpose_lib.datasets.frame import DepthFrame, FrameSource
from handpose_lib.datasets.scene import SCENE_STREAM, SceneConfig, render_scene, sample_scene
from handpose_lib.joints import ICVL_JOINT_NAMES, ICVL_PARENT

NUM_JOINTS = len(ICVL_JOINT_NAMES)
PALM = 0
THUMB_R, THUMB_M, THUMB_T = 1, 2, 3
FINGER_ROOTS = (4, 7, 10, 13)  # index, middle, ring, pinky
# Parent of every joint in the kinematic tree (the Palm is the root): the skeleton of joints.py.
PARENT = ICVL_PARENT

# Median ICVL test-hand bone lengths (mm), indexed by the joint the bone ends at.
NOMINAL_BONE_MM = np.array(
    [0.0, 29.7, 30.8, 25.4, 56.7, 28.7, 18.6, 53.6, 33.6, 21.5, 45.0, 30.6, 20.7, 42.2, 23.4, 18.5]
)
# Directions Palm -> finger roots in the palm plane (median ICVL hand).
_ROOT_XY = np.array([[-21.7, 52.4], [0.0, 53.6], [14.5, 42.6], [32.1, 27.4]])
ROOT_DIRECTION = np.column_stack(
    [_ROOT_XY / np.linalg.norm(_ROOT_XY, axis=1, keepdims=True), [0] * 4]
)
# Rest splay of each finger (deg toward the pinky side), measured on the median ICVL hand.
REST_SPLAY_DEG = np.array([-12.0, 5.0, 10.0, 30.0])
# The thumb metacarpal leaves the palm toward the radial side and slightly proximally.
THUMB_BASE_AZIMUTH_DEG = 110.0

# Nominal body sizes (mm) before per-sample scaling; the ICVL subjects have small hands.
# Radius of the capsule ending at each joint; 0 where the palm slab covers the bone.
NOMINAL_RADIUS_MM = np.array(
    [0.0, 12.0, 9.5, 8.5, 0.0, 8.5, 7.5, 0.0, 8.5, 7.5, 0.0, 8.0, 7.0, 0.0, 7.0, 6.0]
)
NOMINAL_PALM_HALF_THICKNESS_MM = 12.0
NOMINAL_FOREARM_RADIUS_MM = 15.0
FOREARM_HALF_SPREAD = 0.65  # the two forearm capsules sit +-0.65 radius apart
# Proximal palm corners (radial, ulnar) in palm-plane coordinates (lateral, distal).
NOMINAL_WRIST_CORNERS_MM = np.array([[-18.0, -20.0], [24.0, -20.0]])

MAX_HAND_ATTEMPTS = 100
CAPSULE_JOINTS = tuple(j for j in range(NUM_JOINTS) if NOMINAL_RADIUS_MM[j] > 0)


@dataclass(frozen=True)
class JointLimits:
    """Anatomical joint-angle ranges (degrees) the pose sampler stays within.

    The ICVL layout has three joints per finger, so the PIP and DIP bends are folded into
    one bend between the root->mid and mid->tip bones (`pip_flex_deg`).
    """

    mcp_flex_deg: tuple[float, float] = (-15.0, 90.0)  # root bone out of the palm plane
    pip_flex_deg: tuple[float, float] = (0.0, 110.0)  # bend between the two finger bones
    abduction_deg: tuple[float, float] = (-15.0, 15.0)  # sideways, on top of the rest splay
    thumb_abduction_deg: tuple[float, float] = (25.0, 80.0)  # thumb bone vs. finger axis
    thumb_opposition_deg: tuple[float, float] = (-20.0, 50.0)  # thumb toward the palmar side
    thumb_flex_deg: tuple[float, float] = (-10.0, 80.0)  # bend of the distal thumb bone


@dataclass(frozen=True)
class SyntheticHandConfig:
    """Everything random about a synthetic frame, as ranges; angles in degrees."""

    # All joints lie within this depth range (mm) and project inside the image.
    distance_mm: tuple[float, float] = (200.0, 600.0)
    image_margin_px: float = 10.0
    # Global orientation: roll in the image plane (0 = fingers up), pitch (> 0 tilts the
    # fingers toward the camera) and yaw about the hand's long axis (0 = palm to camera).
    roll_deg: tuple[float, float] = (-90.0, 90.0)
    pitch_deg: tuple[float, float] = (-30.0, 60.0)
    yaw_deg: tuple[float, float] = (-70.0, 70.0)
    mirror_probability: float = 0.0  # > 0 mixes in hands of the other chirality
    limits: JointLimits = field(default_factory=JointLimits)
    # Fingers share one grip (curl in [0, 1], drawn as uniform ** grip_power: > 1 favours
    # open hands, as in ICVL), each deviating by curl_spread; some go their own way.
    grip_power: float = 1.5
    curl_spread: float = 0.25
    independent_finger_probability: float = 0.25
    # Shape: overall scale, independent per-bone length factor (+-), thickness factor.
    hand_scale: tuple[float, float] = (0.85, 1.15)
    bone_length_jitter: float = 0.06
    thickness_scale: tuple[float, float] = (0.85, 1.2)
    # Forearm: its heading in the image follows the hand, bent at the wrist; its angle away
    # from the image plane is drawn on its own: people hold the arm behind the hand, and
    # the steeper it recedes, the less of it a depth-band segmentation keeps.
    wrist_flex_deg: tuple[float, float] = (-35.0, 35.0)
    wrist_deviation_deg: tuple[float, float] = (-20.0, 20.0)
    arm_elevation_deg: tuple[float, float] = (15.0, 45.0)
    # Sensor: readable depth range, Gaussian noise, dropout at silhouette edges / depth
    # jumps and at random inside the hand.
    sensor_range_mm: tuple[float, float] = (150.0, 3000.0)
    noise_std_mm: float = 1.5
    edge_jump_mm: float = 20.0
    edge_dropout: float = 0.5
    speckle_dropout: float = 0.002

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and not value[0] <= value[1]:
                raise ValueError(f"SyntheticHandConfig.{f.name}={value}: expected (low, high)")
        for name in (
            "mirror_probability",
            "independent_finger_probability",
            "edge_dropout",
            "speckle_dropout",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticHandConfig.{name} must be a probability in [0, 1]")
        for name in ("noise_std_mm", "curl_spread", "bone_length_jitter", "image_margin_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"SyntheticHandConfig.{name} must be >= 0")
        if self.grip_power <= 0:
            raise ValueError(f"SyntheticHandConfig.grip_power={self.grip_power}: must be > 0")
        if self.bone_length_jitter >= 1 or self.hand_scale[0] <= 0 or self.thickness_scale[0] <= 0:
            raise ValueError("SyntheticHandConfig: scales must be > 0 and bone_length_jitter < 1")
        if self.distance_mm[0] <= 50.0:
            raise ValueError(f"SyntheticHandConfig.distance_mm={self.distance_mm}: must be > 50")


@dataclass(frozen=True)
class HandPose:
    """Joint angles (degrees) of one hand, in the convention of `JointLimits`.

    finger_flex: (4, 2) MCP and PIP flexion of index, middle, ring, pinky.
    abduction:   (4,) sideways angle of each finger on top of its rest splay.
    thumb:       (3,) abduction, opposition, flexion.
    """

    finger_flex: np.ndarray
    abduction: np.ndarray
    thumb: np.ndarray


@dataclass(frozen=True)
class HandShape:
    """Body geometry around the joints (mm / degrees), independent of the pose.

    radius_mm:      (16,) radius of the capsule of the bone ending at each joint (0: none).
    wrist_corners_mm: (2, 2) proximal palm corners in palm-plane (lateral, distal) coords.
    wrist_flex_deg, wrist_deviation_deg: bend of the forearm off the hand's long axis.
    arm_elevation_deg: angle of the forearm away from the image plane (> 0: receding).
    """

    radius_mm: np.ndarray
    palm_half_thickness_mm: float
    forearm_radius_mm: float
    wrist_corners_mm: np.ndarray
    wrist_flex_deg: float = 0.0
    wrist_deviation_deg: float = 0.0
    arm_elevation_deg: float = 30.0


@dataclass(frozen=True)
class SyntheticHand:
    """One sampled hand: its pose, skeleton and placement (camera-space mm)."""

    pose: HandPose
    bone_mm: np.ndarray  # (16,) bone lengths, indexed by the joint a bone ends at
    joints_local_mm: np.ndarray  # (16, 3) in the local hand frame (before mirroring)
    joints_xyz_mm: np.ndarray  # (16, 3) in camera space
    shape: HandShape
    mirrored: bool


# --------------------------------------------------------------------------- kinematics


def _lerp(low_high: tuple[float, float], s: np.ndarray | float) -> np.ndarray:
    return low_high[0] + (low_high[1] - low_high[0]) * np.clip(s, 0.0, 1.0)


def sample_pose(rng: np.random.Generator, config: SyntheticHandConfig) -> HandPose:
    """Joint angles within `config.limits`; fingers share a grip with individual deviations."""
    lim = config.limits
    grip = rng.uniform() ** config.grip_power
    curl = np.clip(grip + rng.normal(0.0, config.curl_spread, 5), 0.0, 1.0)
    own = rng.uniform(size=5)
    curl = np.where(rng.uniform(size=5) < config.independent_finger_probability, own, curl)
    mcp = _lerp(lim.mcp_flex_deg, curl[1:] + rng.normal(0.0, 0.1, 4))
    pip = _lerp(lim.pip_flex_deg, curl[1:] + rng.normal(0.0, 0.15, 4))
    # Fingers spread less the more they curl (they converge in a fist).
    abduction = np.clip(rng.normal(0.0, 7.0, 4) * (1.0 - 0.6 * curl[1:]), *lim.abduction_deg)
    thumb = np.array(
        [
            rng.uniform(*lim.thumb_abduction_deg),
            _lerp(lim.thumb_opposition_deg, curl[0] + rng.normal(0.0, 0.2)),
            _lerp(lim.thumb_flex_deg, curl[0] + rng.normal(0.0, 0.2)),
        ]
    )
    return HandPose(np.column_stack([mcp, pip]), abduction, thumb)


def sample_bone_lengths(
    rng: np.random.Generator, config: SyntheticHandConfig, hand_scale: float
) -> np.ndarray:
    """(16,) bone lengths: nominal x hand scale x an independent factor per bone."""
    jitter = rng.uniform(-config.bone_length_jitter, config.bone_length_jitter, NUM_JOINTS)
    return NOMINAL_BONE_MM * hand_scale * (1.0 + jitter)


def forward_kinematics(pose: HandPose, bone_mm: np.ndarray) -> np.ndarray:
    """(16, 3) joints in the local hand frame from joint angles and (16,) bone lengths."""
    joints = np.zeros((NUM_JOINTS, 3))
    normal = np.array([0.0, 0.0, 1.0])
    for finger, root in enumerate(FINGER_ROOTS):
        joints[root] = ROOT_DIRECTION[finger] * bone_mm[root]
        splay = np.radians(REST_SPLAY_DEG[finger] + pose.abduction[finger])
        along = np.array([np.sin(splay), np.cos(splay), 0.0])
        mcp, pip = np.radians(pose.finger_flex[finger])
        proximal = np.cos(mcp) * along + np.sin(mcp) * normal
        distal = np.cos(mcp + pip) * along + np.sin(mcp + pip) * normal
        joints[root + 1] = joints[root] + bone_mm[root + 1] * proximal
        joints[root + 2] = joints[root + 1] + bone_mm[root + 2] * distal

    abduction, opposition, flex = np.radians(pose.thumb)
    # Opposition also lifts the metacarpal out of the palm (the thenar muscles bulge).
    lift = np.radians(20.0) + 0.45 * (opposition + np.radians(15.0))
    azimuth = np.radians(THUMB_BASE_AZIMUTH_DEG)
    base = np.array([-np.sin(azimuth) * np.cos(lift), np.cos(azimuth) * np.cos(lift), np.sin(lift)])
    proximal = np.array(
        [
            -np.sin(abduction) * np.cos(opposition),
            np.cos(abduction) * np.cos(opposition),
            np.sin(opposition),
        ]
    )
    # The thumb's bending plane turns with opposition: across the palm (ulnar) for a flat
    # thumb, toward the palmar side for an opposed one.
    turn = min(np.radians(20.0) + max(opposition, 0.0), np.pi / 2)
    bend = np.array([np.cos(turn), 0.0, np.sin(turn)])
    toward_palm = bend - np.dot(bend, proximal) * proximal
    toward_palm /= np.linalg.norm(toward_palm)
    distal = np.cos(flex) * proximal + np.sin(flex) * toward_palm
    joints[THUMB_R] = bone_mm[THUMB_R] * base
    joints[THUMB_M] = joints[THUMB_R] + bone_mm[THUMB_M] * proximal
    joints[THUMB_T] = joints[THUMB_M] + bone_mm[THUMB_T] * distal
    return joints


def _rotation(axis: int, angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    i, j = [k for k in range(3) if k != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


# Local frame -> camera with the palm facing the camera and the fingers pointing up.
_PALM_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


def sample_rotation(rng: np.random.Generator, config: SyntheticHandConfig) -> np.ndarray:
    """(3, 3) local -> camera rotation: yaw about the hand axis, then pitch, then roll."""
    roll, pitch, yaw = (
        np.radians(rng.uniform(*r)) for r in (config.roll_deg, config.pitch_deg, config.yaw_deg)
    )
    return _rotation(2, roll) @ _rotation(0, pitch) @ _PALM_TO_CAMERA @ _rotation(1, yaw)


def _placement_interval(
    rel: np.ndarray, depth: float, focal: float, centre: float, size: int, margin: float
) -> tuple[float, float]:
    """Interval of Palm offsets (mm) along one image axis keeping every joint inside the
    image; `rel` (J, 2) holds each joint's offset along that axis and in depth."""
    z = depth + rel[:, 1]
    low = np.max((margin - centre) * z / focal - rel[:, 0])
    high = np.min((size - 1 - margin - centre) * z / focal - rel[:, 0])
    return low, high


def place_in_frustum(
    rng: np.random.Generator,
    rel_mm: np.ndarray,
    config: SyntheticHandConfig,
    camera: Camera = ICVL,
    attempts: int = 20,
) -> np.ndarray | None:
    """(3,) Palm position so that every joint (`rel_mm` (J, 3) from the Palm) lies within
    `config.distance_mm` and projects `image_margin_px` inside the image; None if none fits."""
    z_low = config.distance_mm[0] - rel_mm[:, 2].min()
    z_high = config.distance_mm[1] - rel_mm[:, 2].max()
    if z_low > z_high:
        return None
    for _ in range(attempts):
        depth = rng.uniform(z_low, z_high)
        x_range = _placement_interval(
            rel_mm[:, [0, 2]], depth, camera.fx, camera.cx, camera.width, config.image_margin_px
        )
        y_range = _placement_interval(
            rel_mm[:, [1, 2]], depth, camera.fy, camera.cy, camera.height, config.image_margin_px
        )
        if x_range[0] <= x_range[1] and y_range[0] <= y_range[1]:
            return np.array([rng.uniform(*x_range), rng.uniform(*y_range), depth])
    return None


def sample_shape(
    rng: np.random.Generator, config: SyntheticHandConfig, hand_scale: float
) -> HandShape:
    """Thickness and forearm of one hand; `hand_scale` sizes everything like the bones."""
    thickness = hand_scale * rng.uniform(*config.thickness_scale)
    per_bone = 1.0 + rng.uniform(-0.05, 0.05, NUM_JOINTS)  # fingers differ a little
    return HandShape(
        radius_mm=NOMINAL_RADIUS_MM * thickness * per_bone,
        palm_half_thickness_mm=NOMINAL_PALM_HALF_THICKNESS_MM * thickness,
        forearm_radius_mm=NOMINAL_FOREARM_RADIUS_MM * thickness,
        wrist_corners_mm=NOMINAL_WRIST_CORNERS_MM * hand_scale,
        wrist_flex_deg=float(rng.uniform(*config.wrist_flex_deg)),
        wrist_deviation_deg=float(rng.uniform(*config.wrist_deviation_deg)),
        arm_elevation_deg=float(rng.uniform(*config.arm_elevation_deg)),
    )


def sample_hand(
    rng: np.random.Generator, config: SyntheticHandConfig, camera: Camera = ICVL
) -> SyntheticHand:
    """Pose, skeleton, shape and placement of one random hand inside the camera frustum."""
    for _ in range(MAX_HAND_ATTEMPTS):  # placement fails rarely; each retry draws a new hand
        pose = sample_pose(rng, config)
        hand_scale = rng.uniform(*config.hand_scale)
        bone_mm = sample_bone_lengths(rng, config, hand_scale)
        local = forward_kinematics(pose, bone_mm)
        mirrored = bool(rng.uniform() < config.mirror_probability)
        oriented = local * [-1.0, 1.0, 1.0] if mirrored else local
        rel = oriented @ sample_rotation(rng, config).T
        palm = place_in_frustum(rng, rel, config, camera)
        if palm is not None:
            shape = sample_shape(rng, config, hand_scale)
            return SyntheticHand(pose, bone_mm, local, rel + palm, shape, mirrored)
    raise ValueError(
        f"no hand fits distance_mm={config.distance_mm} with image_margin_px="
        f"{config.image_margin_px} in {MAX_HAND_ATTEMPTS} tries; widen the range"
    )


# ----------------------------------------------------------------------------- geometry


def hand_frame(joints_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal palm axes (lateral index->pinky, distal palm->middle root, normal)."""
    distal = joints_xyz[FINGER_ROOTS[1]] - joints_xyz[PALM]
    lateral = joints_xyz[FINGER_ROOTS[3]] - joints_xyz[FINGER_ROOTS[0]]
    distal = distal / max(np.linalg.norm(distal), 1e-12)
    lateral = lateral - np.dot(lateral, distal) * distal
    if np.linalg.norm(lateral) < 1e-3:
        raise ValueError(
            "joints_xyz: Palm, Mid.R, Index.R and Pinky.R must span the palm plane "
            "(they coincide or are collinear)"
        )
    lateral = lateral / np.linalg.norm(lateral)
    return lateral, distal, np.cross(lateral, distal)


def _turn(o, a, b) -> float:
    """z of (a - o) x (b - o): > 0 for a counter-clockwise turn."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """(K, 2) counter-clockwise hull of (N, 2) points (monotone chain)."""
    pts = sorted(map(tuple, points))

    def half(seq):
        out: list = []
        for p in seq:
            while len(out) >= 2 and _turn(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(half(pts) + half(pts[::-1]))


def forearm_direction(joints_xyz: np.ndarray, shape: HandShape) -> np.ndarray:
    """(3,) unit direction from the wrist along the forearm, away from the fingers.

    Its heading in the image is the hand's long axis bent by the wrist angles of `shape`;
    its angle to the image plane is `shape.arm_elevation_deg`.
    """
    lateral, distal, normal = hand_frame(joints_xyz)
    flex, deviation = np.radians([shape.wrist_flex_deg, shape.wrist_deviation_deg])
    direction = (
        -np.cos(flex) * np.cos(deviation) * distal
        + np.cos(flex) * np.sin(deviation) * lateral
        + np.sin(flex) * normal
    )
    in_plane = np.hypot(direction[0], direction[1])
    # An arm pointing straight along the optical axis has no heading: let it hang down.
    heading = direction[:2] / in_plane if in_plane > 1e-9 else np.array([0.0, 1.0])
    elevation = np.radians(shape.arm_elevation_deg)
    return np.array([*(np.cos(elevation) * heading), np.sin(elevation)])


def _length_to_leave_image(
    start: np.ndarray, direction: np.ndarray, camera: Camera, near_mm: float
) -> float:
    """Length (mm) along a ray from `start` after which its projection has left the image
    (plus a margin), capped where it would come closer than `near_mm` to the camera."""
    exits = []
    for axis, focal, centre, size, sign in (
        (0, camera.fx, camera.cx, camera.width, 1.0),
        (1, camera.fy, camera.cy, camera.height, -1.0 if camera.y_up else 1.0),
    ):
        for border in (-0.5, size - 0.5):
            k = sign * (border - centre) / focal  # image border as the plane x = k z
            denom = direction[axis] - k * direction[2]
            if abs(denom) > 1e-12:
                s = (k * start[2] - start[axis]) / denom
                if s > 0:
                    exits.append(s)
    length = 1.2 * min(exits) + 50.0 if exits else 1500.0
    if direction[2] < 0:
        length = min(length, (start[2] - near_mm) / -direction[2])
    return max(length, 0.0)


@dataclass(frozen=True)
class HandGeometry:
    """Render primitives in camera space (mm).

    capsules: (K, 2, 3) segment end points, capsule_radius: (K,).
    palm_*:   rounded slab = convex polygon (M, 2) in the plane through `palm_origin`
              spanned by `palm_axes` (2, 3), swept by a ball of radius `palm_half_thickness`.
    """

    capsules: np.ndarray
    capsule_radius: np.ndarray
    palm_origin: np.ndarray
    palm_axes: np.ndarray
    palm_polygon: np.ndarray
    palm_half_thickness: float


def hand_geometry(
    joints_xyz: np.ndarray,
    shape: HandShape,
    camera: Camera = ICVL,
    near_mm: float = 50.0,
) -> HandGeometry:
    """Primitives of a hand built on (16, 3) camera-space joints: finger/thumb capsules
    between the given joints, a palm slab spanning the Palm and the finger roots, and a
    forearm capsule from the wrist, away from the fingers, long enough to leave the image."""
    joints_xyz = np.asarray(joints_xyz, dtype=np.float64)
    lateral, distal, normal = hand_frame(joints_xyz)
    axes = np.stack([lateral, distal])
    origin = joints_xyz[PALM]
    roots_2d = (joints_xyz[list(FINGER_ROOTS)] - origin) @ axes.T
    polygon = _convex_hull(np.vstack([roots_2d, shape.wrist_corners_mm]))

    segments = [(joints_xyz[PARENT[j]], joints_xyz[j]) for j in CAPSULE_JOINTS]
    radii = list(shape.radius_mm[list(CAPSULE_JOINTS)])
    vertices = origin + polygon @ axes  # slab rim: one capsule per polygon edge
    for k in range(len(vertices)):
        segments.append((vertices[k], vertices[(k + 1) % len(vertices)]))
        radii.append(shape.palm_half_thickness_mm)
    # Forearm: two side-by-side capsules give the flat (wide, thin) cross-section of a wrist.
    wrist = origin + shape.wrist_corners_mm.mean(axis=0) @ axes
    direction = forearm_direction(joints_xyz, shape)
    across = lateral - np.dot(lateral, direction) * direction
    across *= FOREARM_HALF_SPREAD * shape.forearm_radius_mm / np.linalg.norm(across)
    start = wrist + 0.5 * shape.forearm_radius_mm * distal  # overlap the palm: no crease
    for side in (-1.0, 1.0):
        a = start + side * across
        near = near_mm + shape.forearm_radius_mm
        segments.append((a, a + _length_to_leave_image(a, direction, camera, near) * direction))
        radii.append(shape.forearm_radius_mm)
    return HandGeometry(
        capsules=np.array(segments),
        capsule_radius=np.array(radii),
        palm_origin=origin,
        palm_axes=axes,
        palm_polygon=polygon,
        palm_half_thickness=shape.palm_half_thickness_mm,
    )


# ---------------------------------------------------------------------------- rendering


@cache
def _rays(camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel ray directions (x/z, y/z, 1): columns (1, W), rows (H, 1), |dir|^2 (H, W).
    With these rays the ray parameter t is the depth z."""
    rx = ((np.arange(camera.width) - camera.cx) / camera.fx)[None, :]
    ry = ((np.arange(camera.height) - camera.cy) / camera.fy)[:, None]
    if camera.y_up:
        ry = -ry
    return rx, ry, rx * rx + ry * ry + 1.0


def _box(points: np.ndarray, pad_mm: float, camera: Camera, near_mm: float):
    """Pixel bounding box (row/column slices) of points (N, 3) grown by `pad_mm`; None if
    the box is empty. Conservative: a sphere at depth z projects within f r / (z - r)."""
    z = points[:, 2]
    if np.any(z - pad_mm < near_mm):
        return slice(0, camera.height), slice(0, camera.width)
    uvd = camera.xyz_to_uvd(points)
    pad = max(camera.fx, camera.fy) * pad_mm / (z.min() - pad_mm) + 1.0
    u0 = max(int(np.floor(uvd[:, 0].min() - pad)), 0)
    u1 = min(int(np.ceil(uvd[:, 0].max() + pad)) + 1, camera.width)
    v0 = max(int(np.floor(uvd[:, 1].min() - pad)), 0)
    v1 = min(int(np.ceil(uvd[:, 1].max() + pad)) + 1, camera.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return slice(v0, v1), slice(u0, u1)


def _sphere_hit(rx, ry, rr, centre, radius):
    """Depth of the first hit of rays (rx, ry, 1) with a sphere; inf where missed."""
    rc = rx * centre[0] + ry * centre[1] + centre[2]
    disc = rc * rc - rr * (centre @ centre - radius * radius)
    return np.where(disc >= 0, (rc - np.sqrt(np.maximum(disc, 0.0))) / rr, np.inf)


def _capsule_hit(rx, ry, rr, a, b, radius):
    """Depth of the first hit with the capsule (segment a-b swept by a ball); inf = miss.

    The first hit on a union is the nearest of the first hits on its parts: the lateral
    surface of the (bounded) cylinder and the two end balls."""
    ba = b - a
    baba = ba @ ba
    a_perp = a - (a @ ba / baba) * ba  # a relative to the axis through the camera centre
    rd_ba = rx * ba[0] + ry * ba[1] + ba[2]
    rd_ap = rx * a_perp[0] + ry * a_perp[1] + a_perp[2]
    qa = rr - rd_ba * rd_ba / baba
    disc = rd_ap * rd_ap - qa * (a_perp @ a_perp - radius * radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rd_ap - np.sqrt(np.maximum(disc, 0.0))) / qa
    along = t * rd_ba - a @ ba  # position of the hit along the axis, in units of |ba|
    t = np.where((disc >= 0) & (along >= 0) & (along <= baba) & (qa > 1e-12), t, np.inf)
    t = np.minimum(t, _sphere_hit(rx, ry, rr, a, radius))
    return np.minimum(t, _sphere_hit(rx, ry, rr, b, radius))


def _slab_faces_hit(rx, ry, origin, axes, polygon, half_thickness):
    """Depth of the first hit with the two flat faces of the palm slab; inf = miss."""
    normal = np.cross(axes[0], axes[1])
    rn = rx * normal[0] + ry * normal[1] + normal[2]
    r1 = rx * axes[0][0] + ry * axes[0][1] + axes[0][2]
    r2 = rx * axes[1][0] + ry * axes[1][1] + axes[1][2]
    o1, o2 = origin @ axes[0], origin @ axes[1]
    edges = np.roll(polygon, -1, axis=0) - polygon
    outward = np.column_stack([edges[:, 1], -edges[:, 0]])  # polygon is counter-clockwise
    limit = np.einsum("ij,ij->i", outward, polygon)
    best = np.full(rn.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for offset in (-half_thickness, half_thickness):
            t = (origin @ normal + offset) / rn
            s1, s2 = t * r1 - o1, t * r2 - o2
            inside = t > 0
            for m, lim in zip(outward, limit, strict=True):
                inside &= m[0] * s1 + m[1] * s2 <= lim
            best = np.where(inside, np.minimum(best, t), best)
    return best


def render_geometry(geometry: HandGeometry, camera: Camera = ICVL) -> np.ndarray:
    """(H, W) noiseless depth in mm (z-buffer minimum over all primitives), 0 = no surface."""
    rx, ry, rr = _rays(camera)
    zbuf = np.full((camera.height, camera.width), np.inf)
    for (a, b), radius in zip(geometry.capsules, geometry.capsule_radius, strict=True):
        box = _box(np.stack([a, b]), radius, camera, near_mm=1.0)
        if box is None:
            continue
        rows, cols = box
        tile = _capsule_hit(rx[:, cols], ry[rows], rr[rows, cols], a, b, radius)
        np.minimum(zbuf[rows, cols], tile, out=zbuf[rows, cols])
    axes, h = geometry.palm_axes, geometry.palm_half_thickness
    corners = geometry.palm_origin + geometry.palm_polygon @ axes
    box = _box(corners, h, camera, near_mm=1.0)
    if box is not None:
        rows, cols = box
        tile = _slab_faces_hit(
            rx[:, cols], ry[rows], geometry.palm_origin, axes, geometry.palm_polygon, h
        )
        np.minimum(zbuf[rows, cols], tile, out=zbuf[rows, cols])
    zbuf[~np.isfinite(zbuf)] = 0.0
    return zbuf


def render_depth(
    joints_xyz: np.ndarray,
    shape: HandShape,
    camera: Camera = ICVL,
) -> np.ndarray:
    """(H, W) noiseless depth (mm, 0 = background) of a hand on (16, 3) camera-space joints.

    The one renderer behind both the synthetic hands and the rendered published poses."""
    joints_xyz = np.asarray(joints_xyz, dtype=np.float64)
    if joints_xyz.shape != (NUM_JOINTS, 3) or not np.all(np.isfinite(joints_xyz)):
        raise ValueError(f"joints_xyz must be finite ({NUM_JOINTS}, 3), got {joints_xyz.shape}")
    if np.any(joints_xyz[:, 2] <= 0):
        raise ValueError("joints_xyz: every joint needs a positive depth z (mm)")
    return render_geometry(hand_geometry(joints_xyz, shape, camera), camera)


def apply_sensor(
    depth_mm: np.ndarray, rng: np.random.Generator, config: SyntheticHandConfig
) -> np.ndarray:
    """(H, W) float32 sensor reading of a clean depth map: out-of-range -> 0, Gaussian
    noise, dropout at silhouette edges and depth jumps and at random, whole millimetres."""
    low, high = config.sensor_range_mm
    depth = np.where((depth_mm >= low) & (depth_mm <= high), depth_mm, 0.0)
    valid = depth > 0
    if config.noise_std_mm > 0:
        depth[valid] += rng.normal(0.0, config.noise_std_mm, int(valid.sum()))
    padded = np.pad(depth, 1)
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(depth.shape, dtype=bool)
    for dv, du in ((0, 1), (2, 1), (1, 0), (1, 2)):
        neighbour = padded[dv : dv + depth.shape[0], du : du + depth.shape[1]]
        # Only the far side of a depth jump loses its reading (the near surface occludes it).
        edge |= (neighbour == 0) | (centre - neighbour > config.edge_jump_mm)
    edge &= valid
    edge_idx = np.flatnonzero(edge)
    drop = edge_idx[rng.uniform(size=edge_idx.size) < config.edge_dropout]
    valid_idx = np.flatnonzero(valid)
    speckle = valid_idx[rng.uniform(size=valid_idx.size) < config.speckle_dropout]
    flat = depth.reshape(-1)
    flat[drop] = 0.0
    flat[speckle] = 0.0
    return np.rint(depth).astype(np.float32)


def render_frame(
    joints_xyz: np.ndarray,
    shape: HandShape,
    rng: np.random.Generator,
    config: SyntheticHandConfig,
    camera: Camera = ICVL,
    scene: SceneConfig | None = None,
    scene_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(H, W) float32 sensor depth of a hand on (16, 3) joints, in an optional scene.

    Without a scene this is `apply_sensor(render_depth(...))`, exactly as before scenes existed;
    with one, its draws come from `scene_rng` only, so the hand is unchanged."""
    if scene is None or not scene.active:
        return apply_sensor(render_depth(joints_xyz, shape, camera), rng, config)
    if scene_rng is None:
        raise ValueError("render_frame: a scene needs its own scene_rng")
    drawn = sample_scene(scene_rng, scene, joints_xyz, camera)
    if drawn.forearm is not None:
        elevation, deviation = drawn.forearm
        shape = replace(shape, arm_elevation_deg=elevation, wrist_deviation_deg=deviation)
    clean = render_depth(joints_xyz, shape, camera)
    background = render_scene(drawn, camera)
    clean = np.where(clean > 0, np.minimum(clean, background), background)
    clean[~np.isfinite(clean)] = 0.0
    return apply_sensor(clean, rng, config)


# ------------------------------------------------------------------------------ sources


def frame_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of frame `index`: a function of (seed, index, stream) only."""
    return np.random.default_rng([stream, seed, index])


def check_seed(seed: int) -> int:
    """`seed` as an int; a clear error unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


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
        if isinstance(num_frames, bool) or not isinstance(num_frames, int | np.integer):
            raise ValueError(f"num_frames must be an integer, got {num_frames!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if config is not None and not isinstance(config, SyntheticHandConfig):
            raise ValueError(f"config must be a SyntheticHandConfig, got {type(config).__name__}")
        if scene is not None and not isinstance(scene, SceneConfig):
            raise ValueError(f"scene must be a SceneConfig, got {type(scene).__name__}")
        self.num_frames = int(num_frames)
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
        return DepthFrame(depth, uvd, self.camera, self.name(index))


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
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    n = len(source)
    indices = list(range(n)) if indices is None else [check_index(i, n, "split") for i in indices]
    if not indices or len(set(indices)) != len(indices):
        raise ValueError("write_icvl_split: indices must be non-empty and without repeats")
    root = Path(root)
    if workers == 1:
        written = _write_frames(source, root, indices)
    else:
        chunks = [indices[k::workers] for k in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_write_frames, [source] * workers, [root] * workers, chunks))
        by_index = {
            i: w
            for chunk, part in zip(chunks, parts, strict=True)
            for i, w in zip(chunk, part, strict=True)
        }
        written = [by_index[i] for i in indices]
    names = [name for name, _ in written]
    if len(set(names)) != len(names):
        raise ValueError("write_icvl_split: frame names repeat; every frame needs its own file")
    return icvl.write_label_file(root / label_file, names, np.stack([uvd for _, uvd in written]))
