"""
A camera that moves: broadcast world -> optical frame on /tf from its own process.

python tf_broadcaster.py T0 VELOCITY: the synthetic camera's pose (ros_harness, looking
straight down from 1 m) translated by x = VELOCITY * (t - T0) m at stamp t, sent at 50 Hz,
so the transform at any stamp is known exactly (linear, as tf2 interpolates).
"""

import sys

from geometry_msgs.msg import TransformStamped
import rclpy
from rclpy.node import Node
from ros_harness import OPTICAL_FRAME, WORLD_FROM_OPTICAL
from tf2_ros import TransformBroadcaster


def camera_x(stamp: float, t0: float, velocity: float) -> float:
    """Return the camera's world x at ``stamp`` (s)."""
    return WORLD_FROM_OPTICAL[0] + velocity * (stamp - t0)


def main() -> None:
    """Broadcast the moving camera until interrupted."""
    t0, velocity = float(sys.argv[1]), float(sys.argv[2])
    rclpy.init()
    node = Node('moving_camera_tf')
    broadcaster = TransformBroadcaster(node)

    def send():
        now = node.get_clock().now()
        msg = TransformStamped()
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = 'world'
        msg.child_frame_id = OPTICAL_FRAME
        x, y, z, qx, qy, qz, qw = WORLD_FROM_OPTICAL
        msg.transform.translation.x = camera_x(now.nanoseconds * 1e-9, t0, velocity)
        msg.transform.translation.y, msg.transform.translation.z = y, z
        rotation = msg.transform.rotation
        rotation.x, rotation.y, rotation.z, rotation.w = qx, qy, qz, qw
        broadcaster.sendTransform(msg)

    node.create_timer(0.02, send)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
