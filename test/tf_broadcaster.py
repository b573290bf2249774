"""
A camera that moves: broadcast world -> optical frame on /tf from its own process.

python tf_broadcaster.py T0 VELOCITY: the synthetic camera's pose (ros_harness, looking
straight down from 1 m) translated by x = VELOCITY * (t - T0) m at stamp t, sent at 50 Hz,
so the transform at any stamp is known exactly (linear, as tf2 interpolates).
"""

import sys

import rclpy
from rclpy.node import Node
from ros_harness import camera_transform, WORLD_FROM_OPTICAL
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
        broadcaster.sendTransform(camera_transform(
            now.to_msg(), camera_x(now.nanoseconds * 1e-9, t0, velocity)))

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
