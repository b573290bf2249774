"""
Pinhole camera with plumb_bob / rational_polynomial distortion, from CameraInfo fields.

Conventions (docs/DEVELOPING.md): 3D points are in the REP 103 optical frame (x right,
y down, z forward) and depth is the z coordinate; pixel coordinates ``(u, v)`` put pixel
centres on integers (ROS CameraInfo); answer coordinates are normalized edge to edge,
``x_norm = (u + 0.5) / width``. "Image-plane coordinates" below are the undistorted ray
coordinates ``(x / z, y / z)`` on the plane z = 1, not answer coordinates.
"""

import dataclasses
import math
from typing import Sequence

import numpy as np

# Coefficients per model, in CameraInfo.D order (OpenCV): k1 k2 p1 p2 k3 [k4 k5 k6].
DISTORTION_MODELS = {'plumb_bob': 5, 'rational_polynomial': 8}
_NEWTON_ITERATIONS = 20
_NEWTON_TOLERANCE = 1e-10  # on the step; quadratic convergence leaves ~1e-20


# Plausible intrinsics of a rectilinear camera: a focal length (px) between 1 % of the image
# size (a field of view near 180 deg) and 1000 times it (a telescope below 0.06 deg), the
# principal point at most one image size outside the image, a skew below the focal length.
MIN_FOCAL_FRACTION = 0.01
MAX_FOCAL_FRACTION = 1000.0
MAX_DISTORTION = 1e4
MAX_IMAGE_SIDE = 1 << 16


def _check_intrinsics(k: np.ndarray, width: int, height: int) -> None:
    """Raise ValueError for intrinsics no real camera has (they break deprojection)."""
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise ValueError(f'image size {width}x{height} exceeds {MAX_IMAGE_SIDE} pixels a side')
    for name, focal, size in (('fx', k[0, 0], width), ('fy', k[1, 1], height)):
        if not MIN_FOCAL_FRACTION * size <= focal <= MAX_FOCAL_FRACTION * size:
            raise ValueError(f'K has an implausible focal length {name}={focal:g} px for a '
                             f'{width}x{height} image (expected {MIN_FOCAL_FRACTION:g} to '
                             f'{MAX_FOCAL_FRACTION:g} times the image size): is the camera '
                             'calibrated?')
    for name, centre, size in (('cx', k[0, 2], width), ('cy', k[1, 2], height)):
        if not -size <= centre <= 2 * size:
            raise ValueError(f'K has its principal point {name}={centre:g} px far outside the '
                             f'{width}x{height} image')
    if abs(k[0, 1]) > k[0, 0]:
        raise ValueError(f'K has an implausible skew {k[0, 1]:g} (fx={k[0, 0]:g})')


def _points(array, columns: int, name: str) -> np.ndarray:
    """Return ``array`` as float64 (N, columns); a single point may be given flat."""
    out = np.asarray(array, dtype=np.float64)
    if out.ndim == 1 and out.shape[0] == columns:
        out = out[None, :]
    if out.ndim != 2 or out.shape[1] != columns:
        raise ValueError(f'{name} must have shape (N, {columns}), got {np.shape(array)}')
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class PinholeCamera:
    """
    Intrinsics of one image stream: size, K (3x3) and lens distortion.

    ``d`` holds the coefficients in CameraInfo order, zero-padded to the model's count
    (5 for plumb_bob, 8 for rational_polynomial); an empty or all-zero D means none.
    """

    width: int
    height: int
    k: np.ndarray
    distortion_model: str = 'plumb_bob'
    d: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        width, height = int(self.width), int(self.height)
        if width <= 0 or height <= 0 or (width, height) != (self.width, self.height):
            raise ValueError(f'image size must be positive integers, got '
                             f'{self.width}x{self.height}')
        k = np.array(self.k, dtype=np.float64)
        if k.size != 9:
            raise ValueError(f'K must have 9 values (row-major 3x3), got {k.size}')
        k = k.reshape(3, 3)
        if not np.any(k):
            raise ValueError('CameraInfo has no intrinsics (K is all zeros): '
                             'is the camera calibrated?')
        if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise ValueError(f'K needs finite, positive focal lengths, got fx={k[0, 0]} '
                             f'fy={k[1, 1]}')
        if k[1, 0] != 0 or not np.array_equal(k[2], [0.0, 0.0, 1.0]):
            raise ValueError(f'K must be upper triangular with last row [0, 0, 1], got {k}')
        _check_intrinsics(k, width, height)
        d = np.array(self.d, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(d)) or np.any(np.abs(d) > MAX_DISTORTION):
            raise ValueError(f'distortion coefficients must be finite and within '
                             f'+-{MAX_DISTORTION:g}, got {d.tolist()}')
        model = self.distortion_model
        if model not in DISTORTION_MODELS:
            if model in ('', 'none') and not np.any(d):
                model, d = 'plumb_bob', np.zeros(0)
            else:
                raise ValueError(f"unsupported distortion model '{model}' with D={d.tolist()} "
                                 f'(supported: {", ".join(DISTORTION_MODELS)}; rectify '
                                 'other lenses first, e.g. with image_proc)')
        count = DISTORTION_MODELS[model]
        if np.any(d[count:]):
            raise ValueError(f"'{model}' takes {count} distortion coefficients, got "
                             f'{d.size}: {d.tolist()}')
        d = np.concatenate([d[:count], np.zeros(max(0, count - d.size))]) if np.any(d) \
            else np.zeros(0)
        k.setflags(write=False)
        d.setflags(write=False)
        object.__setattr__(self, 'width', width)
        object.__setattr__(self, 'height', height)
        object.__setattr__(self, 'k', k)
        object.__setattr__(self, 'distortion_model', model)
        object.__setattr__(self, 'd', d)

    @classmethod
    def from_camera_info(cls, width: int, height: int, k: Sequence[float],
                         d: Sequence[float], distortion_model: str) -> 'PinholeCamera':
        """Build from sensor_msgs/CameraInfo fields (plain sequences, no ROS import)."""
        return cls(int(width), int(height), np.asarray(k, dtype=np.float64),
                   str(distortion_model), np.asarray(d, dtype=np.float64))

    @classmethod
    def from_fovy(cls, width: int, height: int, fovy_deg: float) -> 'PinholeCamera':
        """Ideal camera with square pixels from a vertical field of view (as MuJoCo's)."""
        if not 0.0 < fovy_deg < 180.0:
            raise ValueError(f'fovy must be in (0, 180) degrees, got {fovy_deg}')
        f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
        k = [[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
        return cls(width, height, np.array(k))

    @property
    def has_distortion(self) -> bool:
        """Whether any distortion coefficient is non-zero."""
        return self.d.size > 0

    # -- answer coordinates <-> pixels ------------------------------------------------------
    def normalized_to_pixels(self, xy_norm) -> np.ndarray:
        """Answer coordinates in [0, 1] (edge to edge) -> (N, 2) pixels, centres on integers."""
        xy = _points(xy_norm, 2, 'normalized points')
        return xy * (self.width, self.height) - 0.5

    def pixels_to_normalized(self, uv) -> np.ndarray:
        """(N, 2) pixels -> answer coordinates: ``((u + 0.5) / W, (v + 0.5) / H)``."""
        uv = _points(uv, 2, 'pixels')
        return (uv + 0.5) / (self.width, self.height)

    def in_image(self, uv) -> np.ndarray:
        """(N,) bool: the point lies on the image, edges included (-0.5 <= u <= W - 0.5)."""
        uv = _points(uv, 2, 'pixels')
        with np.errstate(invalid='ignore'):
            return ((uv[:, 0] >= -0.5) & (uv[:, 0] <= self.width - 0.5)
                    & (uv[:, 1] >= -0.5) & (uv[:, 1] <= self.height - 0.5))

    # -- distortion on the image plane -------------------------------------------------------
    def _coefficients(self):
        d = np.concatenate([self.d, np.zeros(8 - self.d.size)])
        return d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]

    def distort_normalized(self, xy) -> np.ndarray:
        """Apply the lens distortion to (N, 2) undistorted image-plane coordinates."""
        xy = _points(xy, 2, 'image-plane points')
        if not self.has_distortion:
            return xy.copy()
        k1, k2, p1, p2, k3, k4, k5, k6 = self._coefficients()
        x, y = xy[:, 0], xy[:, 1]
        r2 = x * x + y * y
        radial = ((1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)))
                  / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))))
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        return np.stack([xd, yd], axis=1)

    def undistort_normalized(self, xy_distorted) -> np.ndarray:
        """
        Invert ``distort_normalized`` by Newton's method (vectorized, to machine precision).

        Points where the model cannot be inverted (it folds over: outside its monotonic
        range, or no convergence) are NaN.
        """
        target = _points(xy_distorted, 2, 'image-plane points')
        if not self.has_distortion:
            return target.copy()
        k1, k2, p1, p2, k3, k4, k5, k6 = self._coefficients()
        tx, ty = target[:, 0], target[:, 1]
        # Start from one fixed-point step of the radial part: x = x_d / radial(|x_d|).
        r2 = tx * tx + ty * ty
        with np.errstate(divide='ignore', invalid='ignore'):
            start = ((1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)))
                     / (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))))
        start[~(start > 0)] = 1.0
        x, y = tx * start, ty * start
        converged = np.zeros(len(x), dtype=bool)
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
            for _ in range(_NEWTON_ITERATIONS):
                r2 = x * x + y * y
                xy2 = 2.0 * x * y
                num = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
                den = 1.0 + r2 * (k4 + r2 * (k5 + r2 * k6))
                radial = num / den
                d_radial = ((k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)) * den
                            - num * (k4 + r2 * (2.0 * k5 + 3.0 * k6 * r2))) / (den * den)
                fx = x * radial + p1 * xy2 + p2 * (r2 + 2.0 * x * x) - tx
                fy = y * radial + p1 * (r2 + 2.0 * y * y) + p2 * xy2 - ty
                j11 = radial + 2.0 * x * x * d_radial + 2.0 * p1 * y + 6.0 * p2 * x
                j12 = xy2 * d_radial + 2.0 * p1 * x + 2.0 * p2 * y
                j22 = radial + 2.0 * y * y * d_radial + 6.0 * p1 * y + 2.0 * p2 * x
                det = j11 * j22 - j12 * j12
                step_x = (j22 * fx - j12 * fy) / det
                step_y = (j11 * fy - j12 * fx) / det
                x -= step_x
                y -= step_y
                converged = (np.abs(step_x) + np.abs(step_y) <= _NEWTON_TOLERANCE) & (det > 0)
                if converged.all() or not np.isfinite(x[~converged]).any():
                    break
        out = np.stack([x, y], axis=1)
        out[~converged] = np.nan
        return out

    # -- pixels <-> rays ---------------------------------------------------------------------
    def pixels_to_rays(self, uv) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) undistorted image-plane coordinates ``(x / z, y / z)``."""
        uv = _points(uv, 2, 'pixels')
        fx, skew, cx = self.k[0]
        fy, cy = self.k[1, 1], self.k[1, 2]
        y = (uv[:, 1] - cy) / fy
        x = (uv[:, 0] - cx - skew * y) / fx
        return self.undistort_normalized(np.stack([x, y], axis=1))

    def rays_to_pixels(self, xy) -> np.ndarray:
        """(N, 2) undistorted image-plane coordinates -> (N, 2) pixels (distortion applied)."""
        xd = self.distort_normalized(xy)
        fx, skew, cx = self.k[0]
        fy, cy = self.k[1, 1], self.k[1, 2]
        return np.stack([fx * xd[:, 0] + skew * xd[:, 1] + cx, fy * xd[:, 1] + cy], axis=1)

    def undistort_pixels(self, uv) -> np.ndarray:
        """(N, 2) distorted pixels -> where an ideal camera with the same K sees them."""
        xy = self.pixels_to_rays(uv)
        fx, skew, cx = self.k[0]
        fy, cy = self.k[1, 1], self.k[1, 2]
        return np.stack([fx * xy[:, 0] + skew * xy[:, 1] + cx, fy * xy[:, 1] + cy], axis=1)

    # -- 3D ------------------------------------------------------------------------------------
    def project(self, points_xyz) -> np.ndarray:
        """(N, 3) optical-frame points -> (N, 2) pixels; NaN for points not in front (z <= 0)."""
        points = _points(points_xyz, 3, 'points')
        z = points[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            xy = points[:, :2] / z[:, None]
        xy[~(z > 0)] = np.nan
        return self.rays_to_pixels(xy)

    def deproject(self, uv, depth) -> np.ndarray:
        """(N, 2) pixels and depth (z, metres; scalar or (N,)) -> (N, 3) optical-frame points."""
        xy = self.pixels_to_rays(uv)
        z = np.asarray(depth, dtype=np.float64)
        if z.ndim > 1 or z.size not in (1, xy.shape[0]):
            raise ValueError(f'depth must be a scalar or have shape ({xy.shape[0]},), '
                             f'got {z.shape}')
        z = np.broadcast_to(z.reshape(-1), (xy.shape[0],))
        return np.stack([xy[:, 0] * z, xy[:, 1] * z, z], axis=1)
