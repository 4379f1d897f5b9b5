"""The depth renderer shared by every rendered hand: primitives, ray casting, sensor model.

Joints become a 320x240 depth frame: capsules for the finger bones, a rounded slab for the
palm and a forearm that leaves the image (so the centre of mass of a depth-segmented hand is
pulled toward the arm, as in real data). A sensor model adds noise, edge dropout and
whole-millimetre quantization; an optional scene (`datasets.scene`) adds what lies behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from handpose_lib.camera import ICVL, Camera
from handpose_lib.datasets.hand_model import (
    FINGER_ROOTS,
    NOMINAL_RADIUS_MM,
    NUM_JOINTS,
    PALM,
    PARENT,
    HandShape,
    SyntheticHandConfig,
)
from handpose_lib.datasets.scene import SceneConfig, render_scene, sample_scene

FOREARM_HALF_SPREAD = 0.65  # the two forearm capsules sit +-0.65 radius apart
CAPSULE_JOINTS = tuple(j for j in range(NUM_JOINTS) if NOMINAL_RADIUS_MM[j] > 0)


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
    lateral, distal, _normal = hand_frame(joints_xyz)
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
