"""
Test harness: a client node spinning in a thread, node subprocesses, a synthetic RGB-D camera.

The synthetic camera looks straight down at a flat table 1 m below it, so the 3D point of
every pixel is known exactly: T_world_optical is a 180 deg rotation about x at (0, 0, 1).
"""

import collections
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional

from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from trace_ros.action import FindPlacement
from trace_ros.core.camera import PinholeCamera
from trace_ros.msg import PlacementResult
from trace_ros.ros.images import depth_to_msg, rgb_to_msg
import yaml

CAMERA_HEIGHT = 1.0
# T_world_optical as [x, y, z, qx, qy, qz, qw]: optical z (forward) = -world z (down).
WORLD_FROM_OPTICAL = [0.0, 0.0, CAMERA_HEIGHT, 1.0, 0.0, 0.0, 0.0]
OPTICAL_FRAME = 'camera_color_optical_frame'
# trace_node parameters that give it the synthetic camera's pose without tf2, goals in world.
STATIC_CAMERA = {'target_frame': 'world', 'static_transform': WORLD_FROM_OPTICAL,
                 'static_transform_parent': 'world', 'static_transform_child': OPTICAL_FRAME}
# Deep enough for a burst of hundreds of instructions, goals, cancels and their results
# (reliable, volatile: also the services' default QoS but for the depth of 10).
DEEP = QoSProfile(depth=1000)
TRANSITIONS = {'configure': Transition.TRANSITION_CONFIGURE,
               'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE,
               'cleanup': Transition.TRANSITION_CLEANUP}


def camera_transform(stamp, x: float = WORLD_FROM_OPTICAL[0]):
    """Return the synthetic camera's world -> optical TransformStamped, at world x ``x``."""
    from geometry_msgs.msg import TransformStamped
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = 'world', OPTICAL_FRAME
    _, y, z, qx, qy, qz, qw = WORLD_FROM_OPTICAL
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z, r.x, r.y, r.z, r.w = x, y, z, qx, qy, qz, qw
    return msg


def expected_world_point(camera: PinholeCamera, x_norm: float, y_norm: float) -> np.ndarray:
    """Where the synthetic table point under a normalized answer point is, in world."""
    uv = camera.normalized_to_pixels(np.array([[x_norm, y_norm]]))
    p = camera.deproject(uv, np.array([CAMERA_HEIGHT]))[0]
    return np.array([p[0], -p[1], CAMERA_HEIGHT - p[2]])


class Client:
    """An rclpy context + node spinning on a background executor, for test processes."""

    def __init__(self, domain_id: int, name: str = 'test_client'):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=3, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def collect(self, msg_type, topic: str, qos=10) -> List:
        """Subscribe and return the list received messages are appended to."""
        received: List = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    @staticmethod
    def wait_until(predicate: Callable[[], bool], timeout: float, period: float = 0.02) -> bool:
        """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(period)
        return predicate()

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)


class SyntheticCamera:
    """Publish colour, depth and CameraInfo of the flat table at a fixed rate."""

    def __init__(self, client: Client, width: int = 640, height: int = 480,
                 fovy_deg: float = 60.0, rate_hz: float = 15.0, best_effort: bool = False):
        self.camera = PinholeCamera.from_fovy(width, height, fovy_deg)
        node = client.node
        self._node = node
        qos = QoSProfile(depth=1, reliability=(QoSReliabilityPolicy.BEST_EFFORT if best_effort
                                               else QoSReliabilityPolicy.RELIABLE))
        self._pubs = {'color': node.create_publisher(Image, 'color/image_raw', qos),
                      'depth': node.create_publisher(Image, 'depth/image_raw', qos),
                      'info': node.create_publisher(CameraInfo, 'color/camera_info', qos)}
        rng = np.random.default_rng(0)
        self.rgb = rng.integers(60, 200, size=(height, width, 3), dtype=np.uint8)
        self.depth = self.table_depth()
        self.frame_id = OPTICAL_FRAME
        self.depth_encoding = '32FC1'
        self.color_encoding = 'rgb8'
        self.stamp_offset = 0.0
        self.info_override: Optional[Dict] = None
        self.published = 0
        self.stamps = collections.deque(maxlen=100000)  # every published frame's stamp (s)
        self.paused = False
        self._timer = node.create_timer(1.0 / rate_hz, self.publish_once)

    def table_depth(self) -> np.ndarray:
        """Z-depth of a table plane 1 m below a camera looking straight down."""
        return np.full((self.camera.height, self.camera.width), CAMERA_HEIGHT, np.float32)

    def camera_info(self, header: Header) -> CameraInfo:
        """Build the CameraInfo of the camera (or the test's override of its fields)."""
        info = CameraInfo(header=header, width=self.camera.width, height=self.camera.height,
                          distortion_model='plumb_bob', d=[0.0] * 5)
        info.k = self.camera.k.flatten().tolist()
        info.p = [info.k[0], 0.0, info.k[2], 0.0, 0.0, info.k[4], info.k[5], 0.0,
                  0.0, 0.0, 1.0, 0.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        for key, value in (self.info_override or {}).items():
            setattr(info, key, value)
        return info

    def connected(self) -> bool:
        """Return whether every camera topic has a subscriber (trace_node's)."""
        return all(pub.get_subscription_count() > 0 for pub in self._pubs.values())

    def publish_once(self) -> None:
        """Publish one synchronized frame stamped now (+ stamp_offset)."""
        if self.paused:
            return
        now = self._node.get_clock().now().nanoseconds * 1e-9 + self.stamp_offset
        header = Header(frame_id=self.frame_id)
        header.stamp.sec = int(now)
        header.stamp.nanosec = int((now - int(now)) * 1e9)
        color = rgb_to_msg(self.rgb, header)
        color.encoding = self.color_encoding
        self._pubs['color'].publish(color)
        self._pubs['depth'].publish(depth_to_msg(self.depth, self.depth_encoding, header))
        self._pubs['info'].publish(self.camera_info(header))
        self.published += 1
        self.stamps.append(now)


def start_node(module: str, params: Dict, node_name: str, log_dir: str) -> subprocess.Popen:
    """Start ``python -m module`` with ``params`` (a ROS params file); output to a log file."""
    params_file = tempfile.NamedTemporaryFile('w', suffix='.yaml', dir=log_dir, delete=False)
    yaml.safe_dump({node_name: {'ros__parameters': params}}, params_file)
    params_file.close()
    log = open(os.path.join(log_dir, f'{node_name}.log'), 'w')
    return subprocess.Popen([sys.executable, '-m', module, '--ros-args', '--params-file',
                             params_file.name], stdout=log, stderr=subprocess.STDOUT,
                            env=os.environ.copy())


def stop_process(process: subprocess.Popen) -> None:
    """Interrupt a node process, then kill it if it does not exit."""
    if process.poll() is None:
        process.send_signal(2)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Session:
    """A running trace_node process with a camera and collectors in this process."""

    def __init__(self, domain_id, params, log_dir, camera_running=True, best_effort_camera=False,
                 camera_rate_hz=15.0):
        self.process = start_node('trace_ros.ros.trace_node', params, 'trace_node', log_dir)
        self.client = Client(domain_id)
        self.camera = SyntheticCamera(self.client, best_effort=best_effort_camera,
                                      rate_hz=camera_rate_hz)
        self.camera.paused = not camera_running
        self.results = self.client.collect(PlacementResult, 'placement_result', DEEP)
        self.goals = self.client.collect(PoseStamped, 'placement_goal')
        self.instructions = self.client.node.create_publisher(String, 'instruction', DEEP)
        self.action = ActionClient(self.client.node, FindPlacement, 'find_placement',
                                   goal_service_qos_profile=DEEP,
                                   cancel_service_qos_profile=DEEP,
                                   result_service_qos_profile=DEEP)
        self._change_state = self.client.node.create_client(ChangeState,
                                                            'trace_node/change_state')
        try:
            self._wait_ready(log_dir, camera_running)
        except BaseException:  # never leave a node or a publishing camera behind
            self.close()
            raise

    def _wait_ready(self, log_dir: str, camera_running: bool) -> None:
        assert self.client.wait_until(
            lambda: self.client.node.count_subscribers('instruction') > 0, 60.0), \
            'trace_node did not come up: ' + (pathlib.Path(log_dir) / 'trace_node.log').read_text()
        if camera_running:  # the first question must not race the camera's discovery
            assert self.client.wait_until(self.camera.connected, 30.0), 'camera not matched'
            published = self.camera.published
            assert self.client.wait_until(lambda: self.camera.published >= published + 3, 10.0)

    def ask(self, instruction: str, timeout: float = 20.0, match: bool = True) -> PlacementResult:
        """
        Publish an instruction and return its result.

        ``match``: the first new result echoing the instruction (an action goal's result,
        also published on the topic, may arrive in between); else the first new result.
        """
        before = len(self.results)
        self.instructions.publish(String(data=instruction))

        def mine():
            return [r for r in self.results[before:] if not match or r.instruction == instruction]
        assert self.client.wait_until(lambda: mine(), timeout), f'no result for {instruction!r}'
        return mine()[0]

    def ask_raw(self, raw: bytes, timeout: float = 20.0) -> PlacementResult:
        """Publish a serialized std_msgs/String (e.g. one holding a NUL); return the result."""
        before = len(self.results)
        self.instructions.publish(raw)
        assert self.client.wait_until(lambda: len(self.results) > before, timeout), \
            f'no result for {raw!r}'
        return self.results[before]

    def change_state(self, transition: str, timeout: float = 60.0) -> bool:
        """Ask trace_node for a lifecycle transition; return whether it succeeded."""
        assert self._change_state.wait_for_service(timeout_sec=10.0)
        future = self._change_state.call_async(ChangeState.Request(
            transition=Transition(id=TRANSITIONS[transition])))
        assert self.client.wait_until(future.done, timeout), f'{transition}: no answer'
        return future.result().success

    def send_goal(self, instruction: str, goal=None):
        """Send a FindPlacement goal; return its accepted handle and the feedback list."""
        client = self.action
        assert client.wait_for_server(timeout_sec=10.0)
        feedback = []
        future = client.send_goal_async(goal or FindPlacement.Goal(instruction=instruction),
                                        feedback_callback=lambda f: feedback.append(f.feedback))
        assert self.client.wait_until(future.done, 10.0)
        handle = future.result()
        assert handle.accepted
        return handle, feedback

    def close(self):
        self.client.close()
        stop_process(self.process)
