"""
Ground truth of a scene for datasets and scoring: poses, footprints and image masks.

Regions are polygons on a horizontal plane in the world (x, y vertices at height z); their
image masks are exact per pixel: the ray through each pixel centre is intersected with
the plane and tested against the polygon. Passing a depth image also removes pixels where
something stands in front of the plane (the visible part of the region).
"""

import dataclasses
import math
from typing import Dict, Optional, Sequence, Tuple

import mujoco
import numpy as np
from trace_ros.sim.camera import SimCamera
from trace_ros.sim.scene import LABEL_TABLE, Scene, TABLE_HALF, TABLE_TOP_Z


@dataclasses.dataclass(frozen=True)
class ObjectPose:
    """World pose of an object's body frame (centre of its bottom face)."""

    position: Tuple[float, float, float]
    quat_xyzw: Tuple[float, float, float, float]

    @property
    def yaw(self) -> float:
        """Rotation about world z (radians)."""
        x, y, z, w = self.quat_xyzw
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))

    @property
    def tilt_deg(self) -> float:
        """Angle between the body's z axis and world z (0 = upright)."""
        x, y, _, _ = self.quat_xyzw
        return math.degrees(math.acos(max(-1.0, min(1.0, 1 - 2 * (x * x + y * y)))))

    def to_list(self):
        """[x, y, z, qx, qy, qz, qw] (the ROS static-transform layout)."""
        return [*self.position, *self.quat_xyzw]

    @classmethod
    def from_list(cls, values: Sequence[float]) -> 'ObjectPose':
        """Inverse of to_list."""
        return cls(tuple(float(v) for v in values[:3]), tuple(float(v) for v in values[3:7]))


def object_poses(scene: Scene, model: mujoco.MjModel,
                 data: mujoco.MjData) -> Dict[str, ObjectPose]:
    """Return the current pose of every object, by name."""
    poses = {}
    for obj in scene.objects:
        body = data.body(obj.name)
        w, x, y, z = (float(v) for v in body.xquat)
        poses[obj.name] = ObjectPose(tuple(float(v) for v in body.xpos), (x, y, z, w))
    return poses


def set_object_pose(model: mujoco.MjModel, data: mujoco.MjData, name: str,
                    pose: ObjectPose) -> None:
    """Teleport an object (its free joint) to ``pose`` at rest; call mj_forward after."""
    joint = model.joint(f'{name}/joint')
    x, y, z, w = pose.quat_xyzw
    data.qpos[joint.qposadr[0]:joint.qposadr[0] + 7] = [*pose.position, w, x, y, z]
    data.qvel[joint.dofadr[0]:joint.dofadr[0] + 6] = 0.0


def apply_poses(model: mujoco.MjModel, data: mujoco.MjData,
                poses: Dict[str, ObjectPose]) -> None:
    """Teleport several objects and update the kinematics."""
    for name, pose in poses.items():
        set_object_pose(model, data, name, pose)
    mujoco.mj_forward(model, data)


def circle(center: Sequence[float], radius: float, count: int = 24) -> np.ndarray:
    """Polygon (count x 2) approximating a circle."""
    angles = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
    return np.column_stack([center[0] + radius * np.cos(angles),
                            center[1] + radius * np.sin(angles)])


def footprint(scene: Scene, name: str, pose: Optional[ObjectPose] = None) -> np.ndarray:
    """Return the object's footprint polygon on the table (rectangle for boxes, else a circle)."""
    obj = scene.by_name(name)
    position = pose.position if pose else obj.position
    yaw = pose.yaw if pose else obj.yaw
    if obj.shape.box_half is None:
        return circle(position, obj.shape.radius)
    hx, hy = obj.shape.box_half
    corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    c, s = math.cos(yaw), math.sin(yaw)
    return corners @ np.array([[c, s], [-s, c]]) + np.asarray(position[:2])


def table_polygon(scene: Optional[Scene] = None) -> np.ndarray:
    """Return the table top's corners (4 x 2) in the world; it lies at z = TABLE_TOP_Z."""
    hx, hy = scene.table_half if scene is not None else TABLE_HALF
    return np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd test of Nx2 points against a simple polygon (Mx2); boundary is arbitrary."""
    points = np.asarray(points, float).reshape(-1, 2)
    poly = np.asarray(polygon, float)
    inside = np.zeros(len(points), bool)
    x, y = points[:, 0], points[:, 1]
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide='ignore', invalid='ignore'):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


def plane_hits(camera: SimCamera, z: float = TABLE_TOP_Z
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Where each pixel-centre ray meets the horizontal plane at ``z``.

    Returns the world (x, y) per pixel (HxWx2), the optical depth of that point (HxW) and
    whether the ray meets the plane in front of the camera (HxW bool).
    """
    rays = camera.pixel_rays()  # world direction per unit of optical depth
    origin = np.asarray(camera.position)
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (z - origin[2]) / rays[:, :, 2]  # optical depth of the plane along the ray
    hit = np.isfinite(t) & (t > 0)
    points = origin[:2] + rays[:, :, :2] * np.where(hit, t, 0.0)[:, :, None]
    return points, t, hit


def region_mask(camera: SimCamera, polygon: np.ndarray, z: float = TABLE_TOP_Z,
                depth: Optional[np.ndarray] = None, tolerance: float = 0.005) -> np.ndarray:
    """
    Return the HxW mask of the pixels whose ray meets the plane at ``z`` inside ``polygon``.

    With ``depth`` (HxW metres), pixels where the rendered surface is nearer than the
    plane by more than ``tolerance`` (occluded) are dropped.
    """
    points, t, hit = plane_hits(camera, z)
    mask = hit & points_in_polygon(points.reshape(-1, 2), polygon).reshape(hit.shape)
    if depth is not None:
        mask &= ~(np.asarray(depth) < t - tolerance)
    return mask


def table_mask(scene: Scene, depth: Optional[np.ndarray] = None) -> np.ndarray:
    """Pixels of the table-top surface (only the visible ones when ``depth`` is given)."""
    return region_mask(scene.camera, table_polygon(scene), TABLE_TOP_Z, depth)


def visible_table_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels the segmentation render attributes to the table (top, edges and legs)."""
    return labels == LABEL_TABLE


def object_mask(scene: Scene, labels: np.ndarray, name: str) -> np.ndarray:
    """Pixels of one object in a segmentation render."""
    return labels == scene.label_of(name)


def support_height(model: mujoco.MjModel, data: mujoco.MjData, xy: Sequence[float],
                   exclude_body: int = -1, from_z: float = 3.0) -> Tuple[float, int]:
    """Height of the highest collidable surface under ``xy`` and its geom id (-1: none)."""
    geom_id = np.array([-1], np.int32)
    groups = np.array([1, 0, 0, 0, 0, 0], np.uint8)  # scene geoms, not the arm's (2, 3)
    dist = mujoco.mj_ray(model, data, np.array([xy[0], xy[1], from_z]),
                         np.array([0.0, 0.0, -1.0]), groups, 1, exclude_body, geom_id)
    if geom_id[0] < 0:
        return -math.inf, -1
    return from_z - dist, int(geom_id[0])
