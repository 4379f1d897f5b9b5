"""What surrounds the hand in a real frame, as options of the synthetic renderer.

Real NYU frames show the body close behind the hand; ICVL frames show the forearm leaving the
image. Both are what the depth segmentation and the localization network must cope with: the
torso can fall into the depth band of the closest object, and an arm that leaves the frame drags
the centre of mass off the hand. `SceneConfig` adds them to `SyntheticSource` /
`RenderedPosesSource`:

- a background surface a realistic distance behind the hand: a torso (a vertical cylinder of
  body width, 50-300 mm behind the hand's farthest joint) or a wall (a tilted plane 300-1000 mm
  behind it), chosen per frame;
- a forearm that reaches the frame edge: a shallow elevation (0-20 deg away from the image plane,
  so its projection always leaves the image) and a wide bend at the wrist (+-60 deg), so that
  with the hand's own roll it leaves through any edge at any angle.

Everything a scene draws comes from its own random stream of (seed, frame), so switching a
scene on leaves the hand, its pose and its labels exactly as they were, and with `scene=None`
(the default) frames are byte-identical to those rendered before scenes existed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from handpose_lib.camera import Camera

SCENE_STREAM = 2  # random stream of scene draws (0: synthetic hands, 1: rendered poses)


@dataclass(frozen=True)
class SceneConfig:
    """Scene options; ranges are (low, high) drawn uniformly per frame; angles in degrees."""

    background: bool = False
    torso_probability: float = 0.5  # else a wall
    torso_gap_mm: tuple[float, float] = (50.0, 300.0)
    torso_radius_mm: tuple[float, float] = (130.0, 190.0)
    torso_offset_mm: tuple[float, float] = (-250.0, 250.0)  # sideways from the hand centre
    torso_tilt_deg: tuple[float, float] = (-20.0, 20.0)  # axis vs. the image's vertical
    wall_gap_mm: tuple[float, float] = (300.0, 1000.0)
    wall_tilt_deg: tuple[float, float] = (-25.0, 25.0)  # normal vs. the optical axis
    forearm_to_edge: bool = False
    forearm_elevation_deg: tuple[float, float] = (0.0, 20.0)
    forearm_deviation_deg: tuple[float, float] = (-60.0, 60.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and not value[0] <= value[1]:
                raise ValueError(f"SceneConfig.{f.name}={value}: expected (low, high)")
        if not 0.0 <= self.torso_probability <= 1.0:
            raise ValueError("SceneConfig.torso_probability must be a probability in [0, 1]")
        if self.torso_gap_mm[0] < 0 or self.wall_gap_mm[0] < 0 or self.torso_radius_mm[0] <= 0:
            raise ValueError("SceneConfig: gaps must be >= 0 mm and the torso radius > 0 mm")
        if not (self.forearm_elevation_deg[0] >= 0.0 and self.forearm_elevation_deg[1] < 60.0):
            raise ValueError(
                "SceneConfig.forearm_elevation_deg must lie in [0, 60) deg so the arm recedes "
                "and still leaves the image"
            )

    @property
    def active(self) -> bool:
        return self.background or self.forearm_to_edge


# The scene of the localization network's synthetic training data (issue 10): both options on.
LOCALIZATION_SCENE = SceneConfig(background=True, forearm_to_edge=True)


@dataclass(frozen=True)
class Scene:
    """One frame's draws. kind: "none" | "torso" | "wall"; for a torso, `point` (3,) on its
    axis, `axis` (3,) unit and `radius_mm`; for a wall, `point` on it and `axis` its unit normal.
    forearm: (elevation_deg, deviation_deg) replacing the hand shape's, or None."""

    kind: str
    point: np.ndarray
    axis: np.ndarray
    radius_mm: float
    forearm: tuple[float, float] | None


def sample_scene(
    rng: np.random.Generator, config: SceneConfig, joints_xyz: np.ndarray, camera: Camera
) -> Scene:
    """Draw a frame's scene around (J, 3) camera-space joints (mm)."""
    joints_xyz = np.asarray(joints_xyz, dtype=np.float64)
    forearm = None
    if config.forearm_to_edge:
        forearm = (
            float(rng.uniform(*config.forearm_elevation_deg)),
            float(rng.uniform(*config.forearm_deviation_deg)),
        )
    if not config.background:
        return Scene("none", np.zeros(3), np.zeros(3), 0.0, forearm)
    centre = joints_xyz.mean(axis=0)
    far = joints_xyz[:, 2].max()
    up = -1.0 if camera.y_up else 1.0  # image "down" in camera space
    if rng.uniform() < config.torso_probability:
        radius = rng.uniform(*config.torso_radius_mm)
        tilt = np.radians(rng.uniform(*config.torso_tilt_deg))
        axis = np.array([np.sin(tilt), up * np.cos(tilt), 0.0])
        depth = far + rng.uniform(*config.torso_gap_mm) + radius  # front surface = far + gap
        point = np.array([centre[0] + rng.uniform(*config.torso_offset_mm), centre[1], depth])
        return Scene("torso", point, axis, float(radius), forearm)
    tilt_x, tilt_y = np.radians(rng.uniform(*config.wall_tilt_deg, size=2))
    normal = np.array([np.sin(tilt_x), np.sin(tilt_y), 1.0])
    point = np.array([centre[0], centre[1], far + rng.uniform(*config.wall_gap_mm)])
    return Scene("wall", point, normal / np.linalg.norm(normal), 0.0, forearm)


def _ray_directions(camera: Camera) -> np.ndarray:
    """(H, W, 3) ray directions (x/z, y/z, 1): the ray parameter is the depth z."""
    rx = (np.arange(camera.width) - camera.cx) / camera.fx
    ry = (np.arange(camera.height) - camera.cy) / camera.fy
    if camera.y_up:
        ry = -ry
    grid_x, grid_y = np.meshgrid(rx, ry)
    return np.stack([grid_x, grid_y, np.ones_like(grid_x)], axis=-1)


def render_scene(scene: Scene, camera: Camera) -> np.ndarray:
    """(H, W) depth (mm) of the scene's background surface; inf where there is none."""
    depth = np.full((camera.height, camera.width), np.inf)
    if scene.kind == "none":
        return depth
    rays = _ray_directions(camera)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scene.kind == "wall":
            denom = rays @ scene.axis
            t = (scene.point @ scene.axis) / denom
            return np.where((denom > 1e-9) & (t > 0), t, np.inf)
        # Infinite cylinder: |(t r - p) x a| = radius, first hit in front of the camera.
        a, p = scene.axis, scene.point
        r_perp = rays - (rays @ a)[..., None] * a
        p_perp = p - (p @ a) * a
        qa = np.einsum("hwc,hwc->hw", r_perp, r_perp)
        qb = -2.0 * (r_perp @ p_perp)
        qc = p_perp @ p_perp - scene.radius_mm**2
        disc = qb * qb - 4.0 * qa * qc
        t = (-qb - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * qa)
        return np.where((disc >= 0) & (qa > 1e-12) & (t > 0), t, np.inf)
