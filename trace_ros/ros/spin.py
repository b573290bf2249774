"""Run a node until Ctrl-C or shutdown, then clean up: the body of every simple main()."""

import signal
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def ignore_interrupts() -> None:
    """
    Ignore further Ctrl-C while a node cleans up after the first one.

    ros2 launch forwards SIGINT to its nodes, and a terminal's Ctrl-C reaches the whole
    process group as well: the second SIGINT would otherwise kill the node mid-cleanup
    (exit code -2, "process has died"). Launch still escalates to SIGTERM/SIGKILL.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spin_node(make_node: Callable[[], Node], args: Optional[Sequence[str]] = None) -> None:
    """Initialize rclpy, build the node, spin it, and always destroy it and shut down."""
    rclpy.init(args=args)
    node = make_node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_interrupts()
        node.destroy_node()
        rclpy.try_shutdown()
