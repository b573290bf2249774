"""
Supporting-surface normal and the placement goal pose from answer points.

The goal pose's z axis is the surface normal pointing out of the support (up out of a
table: the normal faces the camera, which sees the surface from its free side). Its x axis
is a reference axis of the goal's frame (default x) projected onto the surface plane, or y
when the normal is within ~6 degrees of that axis, so the yaw is deterministic; y = z x x.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.depth import depth_windows
from trace_ros.core.transforms import (quat_from_matrix, quat_multiply, quat_normalize,
                                       RigidTransform)

_MIN_IN_PLANE = 0.1  # |reference axis projected on the plane| below this: use the fallback


@dataclasses.dataclass(frozen=True)
class PlaneFit:
    """A plane through ``centroid`` with unit ``normal``, its RMS residual and inliers."""

    normal: np.ndarray
    centroid: np.ndarray
    rms: float
    inliers: int


def _least_squares_plane(points: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(centroid, unit normal) of the SVD plane fit; None if degenerate (collinear)."""
    if len(points) < 3:
        return None
    centroid = points.mean(axis=0)
    _, singular, vt = np.linalg.svd(points - centroid, full_matrices=False)
    if singular[1] <= 1e-9 * max(singular[0], 1e-12):
        return None
    return centroid, vt[2]


def fit_plane(points, viewpoint: Sequence[float] = (0.0, 0.0, 0.0),
              outlier_sigma: float = 3.0, min_tolerance: float = 1e-4,
              samples: int = 64, refits: int = 3) -> Optional[PlaneFit]:
    """
    Robust plane through (N, 3) points (metres), normal facing ``viewpoint``.

    A least-median-of-squares start (the least-squares plane and ``samples`` planes through
    point triplets, drawn with a fixed seed so results are repeatable) picks the inliers:
    points within ``outlier_sigma`` robust standard deviations (MAD, at least
    ``min_tolerance``). Then least squares (SVD) on the inliers, re-selected up to
    ``refits`` times. Object tops, edges and flying pixels are rejected as long as most
    points lie on the surface. None for fewer than 3 finite points or a collinear set.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    points = points[np.all(np.isfinite(points), axis=1)]
    start = _least_squares_plane(points)
    if start is None:
        return None
    triplets = points[np.random.default_rng(0).integers(0, len(points), (samples, 3))]
    normals = np.cross(triplets[:, 1] - triplets[:, 0], triplets[:, 2] - triplets[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    usable = lengths > 1e-12
    anchors = np.vstack([start[0], triplets[usable, 0]])
    normals = np.vstack([start[1], normals[usable] / lengths[usable, None]])
    distances = np.abs(np.einsum('mnk,mk->mn', points[None, :, :] - anchors[:, None, :],
                                 normals))
    medians = np.median(distances, axis=1)
    best = int(np.argmin(medians))
    keep = distances[best] <= max(outlier_sigma * 1.4826 * medians[best], min_tolerance)
    fit = None
    for _ in range(refits + 1):
        plane = _least_squares_plane(points[keep])
        if plane is None:
            break
        centroid, normal = plane
        distance = np.abs((points - centroid) @ normal)
        fit = PlaneFit(normal, centroid, float(np.sqrt(np.mean(distance[keep] ** 2))),
                       int(keep.sum()))
        sigma = 1.4826 * float(np.median(distance[keep]))
        new_keep = distance <= max(outlier_sigma * sigma, min_tolerance)
        if np.array_equal(new_keep, keep) or new_keep.sum() < 3:
            break
        keep = new_keep
    if fit is None:
        return None
    if fit.normal @ (np.asarray(viewpoint, dtype=np.float64) - fit.centroid) < 0:
        fit = dataclasses.replace(fit, normal=-fit.normal)
    return fit


def fit_surface(depth_m: np.ndarray, camera: PinholeCamera, uv,
                window: int = 7) -> Optional[PlaneFit]:
    """Fit the plane through the valid depth in a window around each (N, 2) pixel."""
    values, cols, rows = depth_windows(depth_m, uv, window)
    valid = ~np.isnan(values)
    cells, first = np.unique(rows[valid] * np.asarray(depth_m).shape[1] + cols[valid],
                             return_index=True)
    pixels = np.stack([cols[valid][first], rows[valid][first]], axis=1).astype(np.float64)
    points = camera.deproject(pixels, values[valid][first])
    return fit_plane(points)


def surface_normal(depth_m: np.ndarray, camera: PinholeCamera, uv,
                   window: int = 7) -> np.ndarray:
    """
    Return the unit normal (3,) of the surface under (N, 2) pixels, in the optical frame.

    The normal faces the camera. Without enough valid depth for a plane (see
    ``fit_surface``), it falls back to the direction from the points back to the camera.
    """
    fit = fit_surface(depth_m, camera, uv, window)
    if fit is not None:
        return fit.normal
    rays = camera.pixels_to_rays(uv)
    rays = rays[np.all(np.isfinite(rays), axis=1)]
    towards = -np.append(rays.mean(axis=0), 1.0) if len(rays) else np.array([0.0, 0.0, -1.0])
    return towards / np.linalg.norm(towards)


def orientation_from_normal(normal, reference_axis: Sequence[float] = (1.0, 0.0, 0.0),
                            fallback_axis: Sequence[float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Quaternion (x, y, z, w) with z along ``normal``, x from ``reference_axis`` (see module)."""
    z = np.asarray(normal, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(z)
    if not (np.isfinite(norm) and norm > 1e-12):
        raise ValueError(f'surface normal {z.tolist()} is not a usable direction')
    z = z / norm
    x = None
    for axis in (reference_axis, fallback_axis):
        axis = np.asarray(axis, dtype=np.float64).reshape(3)
        axis = axis / np.linalg.norm(axis)
        in_plane = axis - (axis @ z) * z
        if np.linalg.norm(in_plane) >= _MIN_IN_PLANE:
            x = in_plane / np.linalg.norm(in_plane)
            break
    if x is None:
        raise ValueError('reference and fallback axes are both parallel to the normal')
    y = np.cross(z, x)
    return quat_from_matrix(np.stack([x, y, z], axis=1))


def placement_goal(points_xyz, normal,
                   reference_axis: Sequence[float] = (1.0, 0.0, 0.0)
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """
    Goal pose from (N, 3) placement points and the surface normal, in their common frame.

    Returns (position (3,), quaternion (4,) x, y, z, w): position is the per-axis median of
    the finite points (robust to a stray answer point); orientation as in the module doc.
    """
    points = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) == 0:
        raise ValueError('placement_goal needs at least one finite 3D point')
    return np.median(points, axis=0), orientation_from_normal(normal, reference_axis)


def transform_normals(transform: RigidTransform, normals) -> np.ndarray:
    """Express unit normals (N, 3) or (3,) in the transform's target frame (rotation only)."""
    rotated = transform.rotate(normals)
    return rotated / np.linalg.norm(rotated, axis=-1, keepdims=True)


def transform_pose(transform: RigidTransform, position,
                   quaternion) -> Tuple[np.ndarray, np.ndarray]:
    """Express a pose given in the source frame in the target frame: (position, quaternion)."""
    position = transform.apply(np.asarray(position, dtype=np.float64).reshape(3))
    return position, quat_normalize(quat_multiply(transform.rotation, quaternion))
