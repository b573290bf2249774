"""Run a node until Ctrl-C or shutdown, then clean up: the body of every simple main()."""

from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], args: Optional[Sequence[str]] = None) -> None:
    """Initialize rclpy, build the node, spin it, and always destroy it and shut down."""
    rclpy.init(args=args)
    node = make_node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
