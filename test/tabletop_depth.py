"""
Synthetic tabletop depth: a table top, axis-aligned boxes on it and a floor, ray cast exactly.

World (target) frame: z up, the table top at z = 0. The camera looks down at the table
obliquely from +x, as the simulator's does.
"""

import numpy as np
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.transforms import RigidTransform

CAMERA = PinholeCamera.from_fovy(640, 480, 55.0)
TABLE = (-0.5, 0.5, -0.6, 0.6)  # x0, x1, y0, y1 of the table top (z = 0)
FLOOR_Z = -0.75


def look_at(eye, target) -> RigidTransform:
    """T_world_optical of a camera at ``eye`` looking at ``target`` (z up, no roll)."""
    forward = np.subtract(target, eye, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return RigidTransform.from_rotation_matrix(np.stack([right, down, forward], axis=1), eye)


WORLD_FROM_OPTICAL = look_at((0.9, 0.0, 0.8), (0.0, 0.0, 0.0))


def _box_hits(origin, dirs, lower, upper) -> np.ndarray:
    """Ray parameter of the entry into an axis-aligned box, inf where the ray misses it."""
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = (np.asarray(lower) - origin) / dirs
        t2 = (np.asarray(upper) - origin) / dirs
    near = np.nanmax(np.minimum(t1, t2), axis=1)
    far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((far >= near) & (near > 0), near, np.inf)


def render(boxes=(), camera: PinholeCamera = CAMERA,
           world_from_optical: RigidTransform = WORLD_FROM_OPTICAL, floor: bool = True,
           table=TABLE) -> np.ndarray:
    """
    Z-depth (float32 metres, NaN = nothing) of the table, ``boxes`` and the floor.

    ``boxes`` are (x0, x1, y0, y1, height) standing on the table top.
    """
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    rays = camera.pixels_to_rays(np.stack([u.ravel(), v.ravel()], axis=1).astype(float))
    rays = np.column_stack([rays, np.ones(len(rays))])
    dirs = world_from_optical.rotate(rays)
    origin = np.asarray(world_from_optical.translation, dtype=float)
    x0, x1, y0, y1 = table
    t = _box_hits(origin, dirs, (x0, y0, -0.05), (x1, y1, 0.0))
    for bx0, bx1, by0, by1, height in boxes:
        t = np.minimum(t, _box_hits(origin, dirs, (bx0, by0, 0.0), (bx1, by1, height)))
    if floor:
        with np.errstate(divide='ignore', invalid='ignore'):
            t_floor = (FLOOR_Z - origin[2]) / dirs[:, 2]
        t = np.minimum(t, np.where(t_floor > 0, t_floor, np.inf))
    depth = np.where(np.isfinite(t), t, np.nan).reshape(camera.height, camera.width)
    return depth.astype(np.float32)  # the rays have z = 1 in the optical frame: t is depth


def normalized(world_points, camera: PinholeCamera = CAMERA,
               world_from_optical: RigidTransform = WORLD_FROM_OPTICAL) -> np.ndarray:
    """Answer coordinates (normalized) of world points as the camera sees them."""
    optical = world_from_optical.inverse().apply(np.atleast_2d(world_points))
    return camera.pixels_to_normalized(camera.project(optical))


def reply(world_points, **kwargs) -> str:
    """Return a model reply whose answer points are the images of ``world_points``."""
    points = ', '.join(f'({x:.4f}, {y:.4f})' for x, y in normalized(world_points, **kwargs))
    return f'Answer: [{points}]'
