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
"""

import dataclasses
import enum
from typing import Optional

import numpy as np
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.transforms import RigidTransform

_MAX_SIDE = 32  # samples per window side (at most 33 x 33 are used)
_MAX_HALF_PX = 160  # window half-size cap (px)
_HYPOTHESES = 24
_MIN_SAMPLES = 12  # fewer valid samples in the footprint: no support
_MIN_INLIER_FRACTION = 0.5  # of the footprint's valid samples, on the support plane
_OBSTACLE_RANK = 2  # the 2nd-nearest obstacle sample sets the clearance (one is noise)
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


def _window(depth_m: np.ndarray, camera: PinholeCamera, pixel, half: int):
    """Deproject a strided window around ``pixel``: (points or NaN (M, 3), rays (M, 3))."""
    height, width = depth_m.shape
    stride = max(1, int(np.ceil(2 * half / _MAX_SIDE)))
    col, row = int(round(pixel[0])), int(round(pixel[1]))
    r0 = row - half + max(0, half - row + stride - 1) // stride * stride
    c0 = col - half + max(0, half - col + stride - 1) // stride * stride
    rows = np.arange(r0, min(row + half, height - 1) + 1, stride)
    cols = np.arange(c0, min(col + half, width - 1) + 1, stride)
    z = depth_m[rows[0]:rows[-1] + 1:stride, cols[0]:cols[-1] + 1:stride].astype(np.float64)
    z[~(z > 0)] = np.nan
    fx, skew, cx = camera.k[0]
    fy, cy = camera.k[1, 1], camera.k[1, 2]
    if camera.has_distortion:
        grid = np.stack(np.meshgrid(cols, rows), axis=-1).reshape(-1, 2).astype(np.float64)
        xy = camera.pixels_to_rays(grid)
    else:  # the same rays without the per-pixel Newton iterations
        y = np.repeat((rows - cy) / fy, len(cols))
        xy = np.stack([(np.tile(cols, len(rows)) - cx - skew * y) / fx, y], axis=1)
    rays = np.column_stack([xy, np.ones(len(xy))])
    return rays * z.reshape(-1, 1), rays


def _norms(vectors: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum('ij,ij->i', vectors, vectors))


def _plane_through(relative: np.ndarray, refine: np.ndarray, up: np.ndarray, tol: float,
                   rng) -> np.ndarray:
    """
    MSAC: the unit normal of the plane through the origin that best fits ``relative``.

    Hypotheses: ``up`` and planes through two random samples. Then least squares on the
    inliers among ``refine``, the threshold shrinking to the residuals' spread.
    """
    a, b = relative[rng.integers(0, len(relative), (2, _HYPOTHESES))]
    normals = np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                        a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                        a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)
    lengths = _norms(normals)
    usable = lengths > 0.2 * _norms(a) * _norms(b) + 1e-12  # not collinear with the point
    normals = np.vstack([up, normals[usable] / lengths[usable, None]])
    costs = np.minimum(np.square(relative @ normals.T), tol * tol).sum(axis=0)
    normal = normals[int(np.argmin(costs))]
    for _ in range(2):
        signed = refine @ normal
        near = signed[np.abs(signed) <= tol]
        spread = 3.0 * 1.4826 * np.median(np.abs(near - np.median(near))) if len(near) else tol
        inliers = refine[np.abs(signed) <= np.clip(spread, 0.25 * tol, tol)]
        if len(inliers) < 3:
            break
        normal = np.linalg.svd(inliers - inliers.mean(axis=0), full_matrices=False)[2][2]
    return normal


def assess_point(depth_m: np.ndarray, camera: PinholeCamera,
                 target_from_camera: RigidTransform, point_camera, params: SupportParams,
                 scene_height: Optional[float] = None) -> PointSupport:
    """
    Judge whether an object with ``params.footprint_radius`` can stand at ``point_camera``.

    ``point_camera`` (3,) is in the optical frame (metres); the verdict's normal is in the
    target frame. Checks in order: NO_SUPPORT (too little depth or no plane through the
    point), TILTED, IN_AIR (the support lies ``max_support_drop`` below ``scene_height``),
    OFF_EDGE (supported fraction of the footprint), OBSTACLE (clearance < footprint).
    The geometry is done in the optical frame; only "up" comes from the target frame.
    """
    radius = params.footprint_radius
    anchor = np.asarray(point_camera, dtype=np.float64).reshape(3)
    depth = float(anchor[2])
    if not (np.all(np.isfinite(anchor)) and depth > 0):
        return PointSupport(Reason.NO_DEPTH, 'no valid depth at the point')
    rotation = target_from_camera.rotation_matrix
    up = rotation[2]  # the target frame's z axis, in the optical frame
    focal = 0.5 * (camera.k[0, 0] + camera.k[1, 1])
    reach = 1.5 * radius  # clearance is measured up to here
    half = int(min(np.ceil(focal * reach / max(depth - reach, 0.5 * depth)) + 2, _MAX_HALF_PX))
    points, rays = _window(np.asarray(depth_m), camera, camera.project(anchor[None, :])[0], half)
    measured = np.isfinite(points[:, 2])
    relative = points[measured] - anchor
    tol = params.tolerance * max(1.0, depth * depth)  # depth noise grows with depth squared
    offsets = _norms(relative)
    near = relative[offsets <= radius]
    if len(near) < _MIN_SAMPLES:
        return PointSupport(Reason.NO_SUPPORT, f'only {len(near)} depth samples within the '
                            f'footprint ({radius * 100:.0f} cm)')
    inner = relative[offsets <= 0.5 * radius]  # hypotheses are scored on the centre
    normal = _plane_through(inner if len(inner) >= _MIN_SAMPLES else near, near, up, tol,
                            np.random.default_rng(0))
    if normal @ anchor > 0:
        normal = -normal  # out of the surface, towards the camera that sees it
    inlier_fraction = np.count_nonzero(np.abs(near @ normal) <= tol) / len(near)
    tilt = float(np.degrees(np.arccos(np.clip(normal @ up, -1.0, 1.0))))
    normal_target = rotation @ normal
    if inlier_fraction < _MIN_INLIER_FRACTION and tilt > params.tilt_limit_deg:
        return PointSupport(Reason.NO_SUPPORT, f'no surface under the point: only '
                            f'{100 * inlier_fraction:.0f} % of the footprint on one plane '
                            '(an edge or clutter)', normal_target, tilt)
    if tilt > params.tilt_limit_deg:
        return PointSupport(Reason.TILTED, f'the surface is {tilt:.0f} deg from horizontal '
                            f'(limit {params.tilt_limit_deg:g})', normal_target, tilt)
    drop = scene_height - (up @ anchor + target_from_camera.translation[2]) \
        if scene_height is not None else 0.0
    if params.max_support_drop > 0 and drop > params.max_support_drop:
        return PointSupport(Reason.IN_AIR, f'depth reads a surface {drop * 100:.0f} cm below '
                            "the scene's main support (background)", normal_target, tilt)
    # Height map: samples' heights over the plane and in-plane distances from the point.
    heights = relative @ normal
    distances = _norms(relative - heights[:, None] * normal)
    obstacle = distances[heights > params.obstacle_height]
    clearance = reach
    if len(obstacle) >= _OBSTACLE_RANK:
        rank = _OBSTACLE_RANK - 1
        clearance = float(min(np.partition(obstacle, rank)[rank], reach))
    # The footprint as the rays see it: where each sample's ray meets the support plane.
    # Measured on it (or on a low bump): supported; behind it or no depth: the plane ends
    # there (an edge, a hole); in front of it by more than obstacle_height: hidden.
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (anchor @ normal) / (rays @ normal)
    foot = (t > 0) & (_norms(t[:, None] * rays - anchor) <= radius)
    ray_heights = np.full(len(rays), -np.inf)  # no depth: nothing on the plane
    ray_heights[measured] = heights
    supported = np.count_nonzero(foot & (ray_heights >= -tol)
                                 & (ray_heights <= params.obstacle_height))
    unsupported = np.count_nonzero(foot & (ray_heights < -tol))
    fraction = supported / max(supported + unsupported, 1)
    verdict = {'normal': normal_target, 'tilt_deg': tilt, 'clearance': clearance,
               'support_fraction': fraction}
    if fraction < params.min_support_fraction:
        return PointSupport(Reason.OFF_EDGE, f'only {100 * fraction:.0f} % of the footprint '
                            f'is on the support (min {100 * params.min_support_fraction:.0f} %):'
                            ' an edge or a hole', **verdict)
    if clearance < radius:
        return PointSupport(Reason.OBSTACLE, f'an obstacle {clearance * 100:.1f} cm away, '
                            f'within the footprint ({radius * 100:.1f} cm)', **verdict)
    return PointSupport(Reason.NONE, '', **verdict)
