"""
Transforms from the camera optical frame to the target frame, at the image stamp.

Uses tf2_ros when it is importable (real ROS 2 installs); otherwise, and in addition,
a static transform given as a node parameter (camera extrinsics), so the node works on
machines without tf2. A missing transform is a PlacementError, never a crash.
"""

from typing import Optional, Sequence

from rclpy.duration import Duration
from rclpy.time import Time
from trace_ros.core.status import PlacementError, Status
from trace_ros.core.transforms import RigidTransform

try:
    import tf2_ros
except ImportError:  # tf2 is not installable from PyPI; real ROS 2 installs have it
    tf2_ros = None


def static_transform_from_list(values: Sequence[float]) -> Optional[RigidTransform]:
    """Build a transform from [x, y, z, qx, qy, qz, qw]; None for an empty list."""
    values = list(values)
    if not values:
        return None
    if len(values) != 7:
        raise ValueError(f'static transform needs 7 values [x, y, z, qx, qy, qz, qw], '
                         f'got {len(values)}')
    return RigidTransform.from_translation_quaternion(values[:3], values[3:])


class TransformSource:
    """Look up T_target_source at a stamp from tf2 or from one static extrinsic."""

    def __init__(self, node, static_parent: str = '', static_child: str = '',
                 static: Optional[RigidTransform] = None, use_tf2: bool = True):
        self._static_parent = static_parent
        self._static_child = static_child
        self._static = static
        self._buffer = None
        self._listener = None
        if use_tf2 and tf2_ros is not None:
            self._buffer = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._buffer, node)

    @property
    def subscriptions(self) -> list:
        """Return the tf2 listener's /tf and /tf_static subscribers (none without tf2)."""
        if self._listener is None:
            return []
        return [self._listener.tf_sub, self._listener.tf_static_sub]

    def close(self) -> None:
        """Destroy the tf2 listener's subscriptions (only where no executor waits on them)."""
        if self._listener is not None:
            self._listener.unregister()
            self._listener = None

    @property
    def backend(self) -> str:
        """'tf2', 'static' or 'tf2+static': where transforms come from."""
        parts = (['tf2'] if self._buffer is not None else []) + (
            ['static'] if self._static is not None else [])
        return '+'.join(parts) or 'none'

    def lookup(self, target: str, source: str, stamp: Time,
               timeout_s: float = 0.1) -> RigidTransform:
        """Return T_target_source at ``stamp``; raise PlacementError(NO_TRANSFORM)."""
        if target == source:
            return RigidTransform.identity()
        if self._static is not None:
            if (target, source) == (self._static_parent, self._static_child):
                return self._static
            if (source, target) == (self._static_parent, self._static_child):
                return self._static.inverse()
        if self._buffer is not None:
            try:
                msg = self._buffer.lookup_transform(target, source, stamp,
                                                    Duration(seconds=timeout_s))
            except Exception as exc:  # tf2 raises several exception types
                raise PlacementError(Status.NO_TRANSFORM,
                                     f"no transform '{source}' -> '{target}' at the image "
                                     f'stamp: {exc}') from exc
            t, q = msg.transform.translation, msg.transform.rotation
            return RigidTransform.from_translation_quaternion((t.x, t.y, t.z),
                                                              (q.x, q.y, q.z, q.w))
        known = (f"the static transform parameter gives '{self._static_parent}' -> "
                 f"'{self._static_child}'" if self._static is not None
                 else 'no static transform parameter is set')
        raise PlacementError(Status.NO_TRANSFORM,
                             f"no transform '{source}' -> '{target}': tf2 is not available "
                             f'and {known}')
