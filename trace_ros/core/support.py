"""
Support surfaces from depth: whether an object can stand at a 3D point.

Everything is judged in the target frame, whose z axis points up (against gravity, REP 103),
so "horizontal" means a normal along +z. Around each point a window of depth samples
covering ``1.5 * footprint_radius`` around it is deprojected; a RANSAC plane through the
point (hypotheses through the point and two samples within the footprint, refined by least
squares on the inliers) is its support. The samples' heights above that plane form a local
height map: higher than ``obstacle_height`` is an obstacle (clearance = horizontal distance
to the nearest one), lower than the plane or without depth is no support (the footprint's
supported fraction). The scene's main support (the most common height of a sparse sample of
the image) tells a point on the background far below it (e.g. the floor past the table).
All points of a frame are judged at once (``assess_points``; the batched window sampling
and plane fits are in ``trace_ros.core.support_geometry``).
"""

import dataclasses
import enum
from typing import List, Optional

import numpy as np
from trace_ros.core import support_geometry as geometry
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.transforms import RigidTransform

_MAX_HALF_PX = 160  # window half-size cap (px)
_MIN_SAMPLES = 12  # fewer valid samples in the footprint: no support
_MIN_INLIER_FRACTION = 0.5  # of the footprint's valid samples, on the support plane
_SCENE_STRIDE = 12  # px between the scene-support samples
_SCENE_BIN = 0.01  # m, height histogram bin of the scene support
_SCENE_SHARE = 0.2  # the highest height holding this share of the samples is the support


class Reason(enum.IntEnum):
    """Why a point is (not) a valid placement; mirrors PlacementPoint.REASON_*."""

    NONE = 0
    NOT_CHECKED = 1
    NO_DEPTH = 2
    NO_SUPPORT = 3
    TILTED = 4
    IN_AIR = 5
    OFF_EDGE = 6
    OBSTACLE = 7


@dataclasses.dataclass(frozen=True)
class SupportParams:
    """Thresholds of the support checks (metres, degrees)."""

    footprint_radius: float = 0.04
    tilt_limit_deg: float = 10.0
    obstacle_height: float = 0.01
    tolerance: float = 0.004
    min_support_fraction: float = 0.8
    max_support_drop: float = 0.1

    def __post_init__(self):
        if not (self.footprint_radius > 0 and self.tolerance > 0
                and self.obstacle_height > self.tolerance):
            raise ValueError('footprint_radius and tolerance must be positive and '
                             'obstacle_height larger than tolerance')
        if not (0 <= self.tilt_limit_deg <= 90 and 0 <= self.min_support_fraction <= 1):
            raise ValueError('tilt_limit_deg must be in [0, 90], min_support_fraction in [0, 1]')


@dataclasses.dataclass(frozen=True)
class PointSupport:
    """The verdict on one point: validity, reason, support plane and local free space."""

    reason: Reason
    detail: str = ''
    normal: np.ndarray = dataclasses.field(default_factory=lambda: np.full(3, np.nan))
    tilt_deg: float = float('nan')
    clearance: float = float('nan')
    support_fraction: float = float('nan')

    @property
    def valid(self) -> bool:
        """Whether an object of the footprint can stand at the point."""
        return self.reason == Reason.NONE


def scene_support_height(depth_m: np.ndarray, camera: PinholeCamera,
                         target_from_camera: RigidTransform) -> Optional[float]:
    """
    Return the height (target z) of the scene's main horizontal support, or None.

    A sparse sample of the image's heights goes into a histogram (1 cm bins, smoothed over
    3): horizontal surfaces pile up in one bin, walls and sides spread out. The highest peak
    holding 20 % of the samples is the support (a table above the floor it stands on);
    without one, the most common height.
    """
    sub = np.asarray(depth_m)[::_SCENE_STRIDE, ::_SCENE_STRIDE]
    rows, cols = np.nonzero(np.isfinite(sub) & (sub > 0))
    if len(rows) < _MIN_SAMPLES:
        return None
    pixels = np.stack([cols, rows], axis=1).astype(np.float64) * _SCENE_STRIDE
    z = (camera.deproject(pixels, sub[rows, cols]) @ target_from_camera.rotation_matrix[2]
         + target_from_camera.translation[2])
    z = z[np.isfinite(z)]
    if len(z) < _MIN_SAMPLES:
        return None
    bins = np.floor((z - z.min()) / _SCENE_BIN).astype(np.intp)
    smooth = np.convolve(np.bincount(bins), np.ones(3), mode='same')
    peaks = np.flatnonzero((smooth >= _SCENE_SHARE * len(z))
                           & (smooth >= np.roll(smooth, 1)) & (smooth >= np.roll(smooth, -1)))
    top = int(peaks.max()) if len(peaks) else int(np.argmax(smooth))
    centre = z.min() + (top + 0.5) * _SCENE_BIN
    return float(np.median(z[np.abs(z - centre) <= 1.5 * _SCENE_BIN]))


def assess_points(depth_m: np.ndarray, camera: PinholeCamera,
                  target_from_camera: RigidTransform, points_camera, params: SupportParams,
                  scene_height: Optional[float] = None) -> List[PointSupport]:
    """
    Judge whether an object with ``params.footprint_radius`` can stand at each point.

    ``points_camera`` (P, 3) are in the optical frame (metres); the verdicts' normals are in
    the target frame. Checks in order: NO_DEPTH, NO_SUPPORT (too little depth or no plane
    through the point), TILTED, IN_AIR (the support lies ``max_support_drop`` below
    ``scene_height``), OFF_EDGE (supported fraction of the footprint), OBSTACLE (clearance <
    footprint). Returns one verdict per point, in order; points without a finite, positive
    depth are NO_DEPTH. The geometry is done in the optical frame, all points at once; only
    "up" comes from the target frame.
    """
    anchors = np.asarray(points_camera, dtype=np.float64).reshape(-1, 3)
    verdicts = [None] * len(anchors)
    with np.errstate(invalid='ignore', divide='ignore'):  # NaN marks samples without depth
        todo = np.flatnonzero(np.all(np.isfinite(anchors), axis=1) & (anchors[:, 2] > 0))
        if len(todo):
            _judge(np.asarray(depth_m), camera, target_from_camera, anchors[todo], params,
                   scene_height, todo, verdicts)
    return [v if v is not None else PointSupport(Reason.NO_DEPTH, 'no valid depth at the point')
            for v in verdicts]


def _judge(depth_m, camera, target_from_camera, anchor, params, scene_height, todo, verdicts):
    """Judge points with depth (``assess_points``); the verdicts go to ``verdicts[todo]``."""
    radius = params.footprint_radius
    depth = anchor[:, 2]
    rotation = target_from_camera.rotation_matrix
    up = rotation[2]  # the target frame's z axis, in the optical frame
    focal = 0.5 * (camera.k[0, 0] + camera.k[1, 1])
    reach = 1.5 * radius  # clearance is measured up to here
    halves = np.minimum(np.ceil(focal * reach / np.maximum(depth - reach, 0.5 * depth)) + 2,
                        _MAX_HALF_PX)
    x, y, z = geometry.windows(depth_m, camera, camera.project(anchor), halves)
    # Samples relative to the point ((P, M) planes; NaN without depth).
    dx, dy, dz = x * z - anchor[:, :1], y * z - anchor[:, 1:2], z - anchor[:, 2:]
    squared = dx * dx + dy * dy + dz * dz
    offsets = np.sqrt(squared)
    near_mask = offsets <= radius
    near_counts = near_mask.sum(axis=1)
    fit = near_counts >= _MIN_SAMPLES
    for i, count in zip(todo[~fit], near_counts[~fit]):
        verdicts[i] = PointSupport(Reason.NO_SUPPORT, f'only {count} depth samples within '
                                   f'the footprint ({radius * 100:.0f} cm)')
    if not fit.any():
        return
    if not fit.all():
        todo, anchor, depth, near_mask = todo[fit], anchor[fit], depth[fit], near_mask[fit]
        x, y, z, dx, dy, dz, squared = (a[fit] for a in (x, y, z, dx, dy, dz, squared))
        offsets = offsets[fit]
    tol = params.tolerance * np.maximum(1.0, depth * depth)  # noise grows with depth squared
    near, near_valid, near_counts = geometry.pack(near_mask, dx, dy, dz, offsets)
    # Hypotheses are scored on the centre (when it has enough samples), refined on the near.
    inner = near_valid & (near[:, :, 3] <= 0.5 * radius)
    near = np.ascontiguousarray(near[:, :, :3])
    on_centre = inner.sum(axis=1) >= _MIN_SAMPLES
    scored, _, scored_counts = geometry.pack(np.where(on_centre[:, None], inner, near_valid),
                                             near[:, :, 0], near[:, :, 1], near[:, :, 2])
    normal = geometry.plane_normals(scored, scored_counts, near, near_valid, up, tol)
    normal[(normal * anchor).sum(axis=1) > 0] *= -1  # out of the surface, towards the camera
    on_plane = near_valid & (np.abs(np.matmul(near, normal[:, :, None])[:, :, 0])
                             <= tol[:, None])
    inlier_fraction = on_plane.sum(axis=1) / near_counts
    tilt = np.degrees(np.arccos(np.clip(normal @ up, -1.0, 1.0)))
    drop = (scene_height - (anchor @ up + target_from_camera.translation[2])
            if scene_height is not None else np.zeros(len(anchor)))
    nx, ny, nz = normal[:, :1], normal[:, 1:2], normal[:, 2:]
    # Height map: samples' heights over the plane; obstacles' in-plane squared distances.
    heights = dx * nx + dy * ny + dz * nz  # NaN without depth
    obstacle = np.where(heights > params.obstacle_height, squared - heights * heights, np.inf)
    rows = np.arange(len(todo))
    obstacle[rows, np.argmin(obstacle, axis=1)] = np.inf  # one is noise: rank 2 counts
    clearance = np.minimum(np.sqrt(np.maximum(obstacle.min(axis=1), 0.0)), reach)
    # The footprint as the rays see it: where each sample's ray meets the support plane.
    # Measured on it (or on a low bump): supported; behind it or no depth: the plane ends
    # there (an edge, a hole); in front of it by more than obstacle_height: hidden.
    t = (anchor * normal).sum(axis=1)[:, None] / (x * nx + y * ny + nz)
    fx, fy, fz = t * x - anchor[:, :1], t * y - anchor[:, 1:2], t - anchor[:, 2:]
    foot = (t > 0) & (np.sqrt(fx * fx + fy * fy + fz * fz) <= radius)
    low = heights >= -tol[:, None]
    supported = (foot & low & (heights <= params.obstacle_height)).sum(axis=1)
    unsupported = (foot & ~low).sum(axis=1)  # below the plane or no depth
    fraction = supported / np.maximum(supported + unsupported, 1)
    normal_target = normal @ rotation.T
    for j, i in enumerate(todo):
        verdicts[i] = _verdict(params, float(inlier_fraction[j]), normal_target[j],
                               float(tilt[j]), float(drop[j]), float(clearance[j]),
                               float(fraction[j]))


def _verdict(params: SupportParams, inlier_fraction: float, normal: np.ndarray, tilt: float,
             drop: float, clearance: float, fraction: float) -> PointSupport:
    """Return the first failed check of a point with a plane, in ``assess_points``' order."""
    if inlier_fraction < _MIN_INLIER_FRACTION and tilt > params.tilt_limit_deg:
        return PointSupport(Reason.NO_SUPPORT, f'no surface under the point: only '
                            f'{100 * inlier_fraction:.0f} % of the footprint on one plane '
                            '(an edge or clutter)', normal, tilt)
    if tilt > params.tilt_limit_deg:
        return PointSupport(Reason.TILTED, f'the surface is {tilt:.0f} deg from horizontal '
                            f'(limit {params.tilt_limit_deg:g})', normal, tilt)
    if params.max_support_drop > 0 and drop > params.max_support_drop:
        return PointSupport(Reason.IN_AIR, f'depth reads a surface {drop * 100:.0f} cm below '
                            "the scene's main support (background)", normal, tilt)
    verdict = {'normal': normal, 'tilt_deg': tilt, 'clearance': clearance,
               'support_fraction': fraction}
    if fraction < params.min_support_fraction:
        return PointSupport(Reason.OFF_EDGE, f'only {100 * fraction:.0f} % of the footprint '
                            f'is on the support (min {100 * params.min_support_fraction:.0f} %):'
                            ' an edge or a hole', **verdict)
    radius = params.footprint_radius
    if clearance < radius:
        return PointSupport(Reason.OBSTACLE, f'an obstacle {clearance * 100:.1f} cm away, '
                            f'within the footprint ({radius * 100:.1f} cm)', **verdict)
    return PointSupport(Reason.NONE, '', **verdict)


def assess_point(depth_m: np.ndarray, camera: PinholeCamera,
                 target_from_camera: RigidTransform, point_camera, params: SupportParams,
                 scene_height: Optional[float] = None) -> PointSupport:
    """Judge one point (3,): ``assess_points`` for a single point."""
    return assess_points(depth_m, camera, target_from_camera,
                         np.asarray(point_camera, dtype=np.float64).reshape(1, 3), params,
                         scene_height)[0]
