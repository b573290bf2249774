"""
Relay one message type from topic `in` to topic `out` (a second process for round trips).

Usage: python echo_node.py <package/msg/Type>
"""

import importlib
import sys

import rclpy
from rclpy.node import Node


def main():
    package, _, type_name = sys.argv[1].split('/')
    msg_type = getattr(importlib.import_module(f'{package}.msg'), type_name)
    rclpy.init()
    node = Node('echo')
    pub = node.create_publisher(msg_type, 'out', 10)
    node.create_subscription(msg_type, 'in', pub.publish, 10)
    print('ready', flush=True)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
