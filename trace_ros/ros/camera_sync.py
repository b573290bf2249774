"""
Colour + depth + CameraInfo subscriptions matched by stamp.

Uses message_filters' ApproximateTimeSynchronizer when it is importable, otherwise the
core's ApproximateTimeSync with the same semantics. Camera inputs use sensor QoS with
depth-1 queues, so only the newest frames are ever considered.
"""

from typing import Callable

from rclpy.qos import qos_profile_sensor_data, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from trace_ros.core.sync import ApproximateTimeSync

try:
    import message_filters
except ImportError:  # not installable from PyPI; real ROS 2 installs have it
    message_filters = None

TOPICS = (('color/image_raw', Image), ('depth/image_raw', Image),
          ('color/camera_info', CameraInfo))


def camera_qos(reliability: str) -> QoSProfile:
    """Sensor-data QoS (keep last 1) with the requested reliability."""
    qos = QoSProfile(depth=1, history=qos_profile_sensor_data.history,
                     durability=qos_profile_sensor_data.durability)
    qos.reliability = (QoSReliabilityPolicy.RELIABLE if reliability == 'reliable'
                       else QoSReliabilityPolicy.BEST_EFFORT)
    return qos


def stamp_seconds(header) -> float:
    """Return a header stamp as float seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class CameraSync:
    """Subscribe to the three camera topics and call ``callback(color, depth, info)``."""

    def __init__(self, node, callback: Callable, *, slop: float, queue_size: int,
                 reliability: str, callback_group=None, use_message_filters: bool = True):
        qos = camera_qos(reliability)
        self._node = node
        self._subscriptions = []
        self.implementation = 'trace_ros'
        if use_message_filters and message_filters is not None:
            subs = [message_filters.Subscriber(node, msg_type, topic, qos_profile=qos,
                                               callback_group=callback_group)
                    for topic, msg_type in TOPICS]
            self._sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop)
            self._sync.registerCallback(callback)
            self._subscriptions = [s.sub for s in subs]
            self.implementation = 'message_filters'
            return
        self._sync = ApproximateTimeSync(len(TOPICS), queue_size, slop, callback)
        for index, (topic, msg_type) in enumerate(TOPICS):
            self._subscriptions.append(node.create_subscription(
                msg_type, topic, self._adder(index), qos, callback_group=callback_group))

    def _adder(self, index: int) -> Callable:
        def add(msg):
            self._sync.add(index, stamp_seconds(msg.header), msg)
        return add

    def destroy(self) -> None:
        """Remove the subscriptions."""
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._subscriptions = []
