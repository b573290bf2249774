"""
The scene's RGB-D camera: the core PinholeCamera (from fovy) plus its optical-frame pose.

MuJoCo cameras look along -Z with +Y up (OpenGL); the REP 103 optical frame (x right,
y down, z forward) is that frame rotated by 180 deg about x. ``world_from_optical`` is
T_world_optical, the transform a ROS static TF (parent world, child optical) publishes.
"""

import dataclasses
from typing import Sequence, Tuple

import numpy as np
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.transforms import RigidTransform


def look_at_rotation(position: Sequence[float], target: Sequence[float],
                     up: Sequence[float] = (0.0, 0.0, 1.0), roll_deg: float = 0.0) -> np.ndarray:
    """
    R_world_optical (columns: optical x, y, z in world) of a camera aimed at a target.

    Without roll the optical x axis is horizontal; ``roll_deg`` turns the camera about its
    optical axis, from optical x towards optical y.
    """
    forward = np.asarray(target, float) - np.asarray(position, float)
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError('camera position and look-at point coincide')
    forward /= norm
    right = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-6:
        raise ValueError('camera looks straight along the up vector; its roll is undefined')
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    if roll_deg:
        c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))
        right, down = c * right + s * down, c * down - s * right
    return np.column_stack([right, down, forward])


@dataclasses.dataclass(frozen=True, eq=False)
class SimCamera:
    """A distortion-free camera with square pixels and its pose in the world."""

    pinhole: PinholeCamera
    fovy_deg: float
    world_from_optical: RigidTransform

    @classmethod
    def look_at(cls, width: int, height: int, fovy_deg: float, position: Sequence[float],
                target: Sequence[float], roll_deg: float = 0.0) -> 'SimCamera':
        """Camera at ``position`` whose optical axis passes through ``target``."""
        rotation = look_at_rotation(position, target, roll_deg=roll_deg)
        return cls(PinholeCamera.from_fovy(int(width), int(height), float(fovy_deg)),
                   float(fovy_deg),
                   RigidTransform.from_rotation_matrix(rotation, np.asarray(position, float)))

    @property
    def width(self) -> int:
        """Return the image width in pixels."""
        return self.pinhole.width

    @property
    def height(self) -> int:
        """Return the image height in pixels."""
        return self.pinhole.height

    @property
    def k(self) -> np.ndarray:
        """3x3 intrinsics; cx = (W-1)/2, cy = (H-1)/2 (pixel centres on integers)."""
        return self.pinhole.k

    @property
    def position(self) -> np.ndarray:
        """Optical centre in the world."""
        return np.asarray(self.world_from_optical.translation, float)

    @property
    def rotation(self) -> np.ndarray:
        """R_world_optical."""
        return self.world_from_optical.rotation_matrix

    @property
    def mujoco_xyaxes(self) -> Tuple[float, ...]:
        """MJCF camera ``xyaxes``: the optical x axis, then the flipped optical y (up)."""
        rotation = self.rotation
        return tuple(float(v) for v in np.concatenate([rotation[:, 0], -rotation[:, 1]]))

    def project(self, points_world) -> Tuple[np.ndarray, np.ndarray]:
        """Pixels (N x 2; NaN behind the camera) and optical depth z (N) of world points."""
        optical = self.world_from_optical.inverse().apply(
            np.asarray(points_world, float).reshape(-1, 3))
        return self.pinhole.project(optical), optical[:, 2]

    def pixel_rays(self) -> np.ndarray:
        """HxWx3 world directions through each pixel centre, scaled to optical z = 1."""
        u, v = np.meshgrid(np.arange(self.width), np.arange(self.height))
        xy = self.pinhole.pixels_to_rays(np.column_stack([u.ravel(), v.ravel()]))
        rays = np.column_stack([xy, np.ones(len(xy))]) @ self.rotation.T
        return rays.reshape(self.height, self.width, 3)
