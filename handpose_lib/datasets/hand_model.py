"""The procedural hand: skeleton, joint limits, pose, shape and placement sampling.

A hand skeleton (16 ICVL joints) comes from forward kinematics with anatomical joint
limits, per-sample bone lengths and a random placement in the camera frustum; `HandShape`
holds the body around the joints (capsule radii, palm thickness, forearm) that
`hand_render` turns into depth. `SyntheticHandConfig` holds every range a synthetic frame is
drawn from, the sensor's included.

Local hand frame used by the kinematics (mm, origin at the Palm joint): +x runs across
the palm from the index toward the pinky, +y points from the palm toward the fingers and
+z is the palm normal on the palmar side (fingers flex toward +z). The template is the
median ICVL test hand expressed in that frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from handpose_lib.camera import ICVL, Camera
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
# Proximal palm corners (radial, ulnar) in palm-plane coordinates (lateral, distal).
NOMINAL_WRIST_CORNERS_MM = np.array([[-18.0, -20.0], [24.0, -20.0]])

MAX_HAND_ATTEMPTS = 100


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
