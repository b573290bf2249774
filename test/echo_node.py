"""
Relay one message type from topic `in` to topic `out` (a second process for round trips).

Usage: python echo_node.py <package/msg/Type>
"""

import importlib
import sys

from rclpy.node import Node
from trace_ros.ros.spin import spin_node


def main():
    package, _, type_name = sys.argv[1].split('/')
    msg_type = getattr(importlib.import_module(f'{package}.msg'), type_name)

    def make_node() -> Node:
        node = Node('echo')
        pub = node.create_publisher(msg_type, 'out', 10)
        node.create_subscription(msg_type, 'in', pub.publish, 10)
        print('ready', flush=True)
        return node

    spin_node(make_node)


if __name__ == '__main__':
    main()
