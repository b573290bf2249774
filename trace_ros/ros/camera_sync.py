"""
Colour + depth + CameraInfo subscriptions matched by stamp.

Uses message_filters' ApproximateTimeSynchronizer when it is importable, otherwise the
core's ApproximateTimeSync with the same semantics. The subscriptions are trace_node's
own (created once per configure): each message passes the gate (inputs are dropped while
the node is inactive) and the StampGuard (stamps beyond max_future_s ahead are dropped and
reported; a backward clock jump resets the synchronizer) before the synchronizer sees it.
"""

from typing import Callable, Optional

from rclpy.qos import qos_profile_sensor_data, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from trace_ros.core.sync import ApproximateTimeSync, StampGuard

try:
    import message_filters
except ImportError:  # not installable from PyPI; real ROS 2 installs have it
    message_filters = None

TOPICS = (('color/image_raw', Image), ('depth/image_raw', Image),
          ('color/camera_info', CameraInfo))
# Keep-last depth of each camera subscription: a second slot lets a callback that fell one
# message behind (a busy CPU) still take it; the synchronizer keeps only the newest frame.
CAMERA_DEPTH = 2
# A stamp this much older than the newest of its topic means the clock jumped back.
CLOCK_JUMP_S = 1.0


def camera_qos(reliability: str) -> QoSProfile:
    """Sensor-data QoS (keep last CAMERA_DEPTH) with the requested reliability."""
    qos = QoSProfile(depth=CAMERA_DEPTH, history=qos_profile_sensor_data.history,
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
                 reliability: str, callback_group=None, use_message_filters: bool = True,
                 max_future_s: float = float('inf'),
                 on_future: Optional[Callable[[float], None]] = None):
        self._node = node
        self._on_future = on_future
        self._guard = StampGuard(len(TOPICS), max_future_s, CLOCK_JUMP_S)
        self.enabled = True
        if use_message_filters and message_filters is not None:
            self._inputs = [message_filters.SimpleFilter() for _ in TOPICS]
            self._sync = message_filters.ApproximateTimeSynchronizer(
                self._inputs, queue_size, slop)
            self._sync.registerCallback(callback)
            self.implementation = 'message_filters'
        else:
            self._inputs = None
            self._sync = ApproximateTimeSync(len(TOPICS), queue_size, slop, callback,
                                             jump_s=CLOCK_JUMP_S)
            self.implementation = 'trace_ros'
        qos = camera_qos(reliability)
        self.subscriptions = [
            node.create_subscription(msg_type, topic, self._adder(index), qos,
                                     callback_group=callback_group)
            for index, (topic, msg_type) in enumerate(TOPICS)]

    def _adder(self, index: int) -> Callable:
        def add(msg):
            if not self.enabled:
                return
            stamp = stamp_seconds(msg.header)
            now = self._node.get_clock().now().nanoseconds * 1e-9
            verdict = self._guard.check(index, stamp, now)
            if verdict == 'future':
                if self._on_future is not None:
                    self._on_future(stamp - now)
                return
            if verdict == 'jump':
                self._reset_sync()
            if self._inputs is not None:
                self._inputs[index].signalMessage(msg)
            else:
                self._sync.add(index, stamp, msg)
        return add

    def _reset_sync(self) -> None:
        if self._inputs is None:
            self._sync.reset()
            return
        with self._sync.lock:  # message_filters' queues are shared with its inputs: clear
            for queue in self._sync.queues:
                queue.clear()

    def reset(self) -> None:
        """Forget every queued message and stamp (frames before this are never emitted)."""
        self._guard.reset()
        self._reset_sync()

    def destroy(self) -> None:
        """Remove the subscriptions (only where no executor is waiting on them)."""
        self.enabled = False
        for sub in self.subscriptions:
            self._node.destroy_subscription(sub)
        self.subscriptions = []
