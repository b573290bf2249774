"""
`ros2 launch` as a ROS 2 user runs it: the launch files' processes over DDS, clients here.

bringup.launch.py takes trace_node to active through its lifecycle events and answers an
instruction from the camera published here, with the camera pose from tf2 (a static
broadcaster here); sim.launch.py runs a closed-loop episode through its three processes.
Both launches stop cleanly on SIGINT to their process group, as Ctrl-C in a shell does.
"""

import json
import os
import pathlib
import signal
import subprocess
import time

from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from memorized_model import GOOD
import numpy as np
import pytest
from ros_harness import camera_transform, Client, expected_world_point, SyntheticCamera
from std_msgs.msg import String
from test_trace_node import ANSWER_POINTS
from trace_ros.msg import PlacementResult
from trace_ros.ros.goal_executor_node import TASK_QOS

pytestmark = pytest.mark.ros
pytest.importorskip('launch_ros', reason='launch_ros is not installed (scripts/setup.sh '
                    'builds it from ../shared/ros_extras; a ROS 2 install has it)')
tf2_ros = pytest.importorskip('tf2_ros', reason='tf2_ros is not installed')


class Launch:
    """`ros2 launch ARGS` in its own process group, its output in a log file."""

    def __init__(self, log_path: pathlib.Path, *args: str):
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen(['ros2', 'launch', *args], stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        env=os.environ.copy())

    def log(self) -> str:
        return self.log_path.read_text()

    def interrupt(self, timeout: float = 30.0) -> int:
        """SIGINT the process group (Ctrl-C); return launch's exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def stop_cleanly(launch: Launch, client) -> None:
    """Close the test's client, then Ctrl-C the launch: it must exit 0, every node cleanly."""
    if client is not None:
        client.close()
    code = launch.interrupt()
    log = launch.log()
    assert code == 0, log
    assert 'process has died' not in log and 'Traceback' not in log, log


def lifecycle_state(client: Client, node: str) -> int:
    service = client.node.create_client(GetState, f'{node}/get_state')
    try:
        if not service.wait_for_service(timeout_sec=5.0):
            return State.PRIMARY_STATE_UNKNOWN
        future = service.call_async(GetState.Request())
        if not client.wait_until(future.done, 5.0):
            return State.PRIMARY_STATE_UNKNOWN
        return future.result().current_state.id
    finally:
        client.node.destroy_client(service)


def static_camera_transform(client: Client):
    """Broadcast world -> optical frame on /tf_static (the synthetic camera's pose)."""
    broadcaster = tf2_ros.StaticTransformBroadcaster(client.node)
    broadcaster.sendTransform(camera_transform(client.node.get_clock().now().to_msg()))
    return broadcaster


def test_bringup_launch_activates_answers_and_stops_on_sigint(
        memorized_model_dir, ros_domain_id, tmp_path):
    launch = Launch(tmp_path / 'launch.log', 'trace_ros', 'bringup.launch.py',
                    f'model:={memorized_model_dir}', 'target_frame:=world')
    client = None
    try:
        client = Client(ros_domain_id)
        keep = static_camera_transform(client)  # noqa: F841 (latched while it lives)
        camera = SyntheticCamera(client)
        results = client.collect(PlacementResult, 'placement_result')
        instructions = client.node.create_publisher(String, 'instruction', 10)
        assert client.wait_until(
            lambda: lifecycle_state(client, '/trace_node') == State.PRIMARY_STATE_ACTIVE,
            90.0, period=0.5), launch.log()
        assert client.wait_until(camera.connected, 30.0), launch.log()
        assert client.wait_until(lambda: instructions.get_subscription_count() > 0, 10.0)
        result = None
        for _ in range(5):  # a frame may be lost on the way (best-effort camera QoS)
            before = len(results)
            instructions.publish(String(data=GOOD))
            assert client.wait_until(lambda: len(results) > before, 30.0), launch.log()
            result = results[before]
            if result.status == PlacementResult.STATUS_OK:
                break
            time.sleep(0.5)
        assert result.status == PlacementResult.STATUS_OK, result.message
        expected = np.array([expected_world_point(camera.camera, x, y)
                             for x, y in ANSWER_POINTS])
        goal = result.goal.pose.position
        np.testing.assert_allclose([goal.x, goal.y, goal.z], np.median(expected, axis=0),
                                   atol=0.01)
        assert result.goal.header.frame_id == 'world'
        log = launch.log()
        assert 'transforms from tf2' in log and 'camera sync by message_filters' in log, log
    finally:
        stop_cleanly(launch, client)


def test_sim_launch_runs_a_closed_loop_episode(ros_domain_id, tmp_path):
    launch = Launch(tmp_path / 'launch.log', 'trace_ros', 'sim.launch.py', 'seed:=5',
                    'robot:=false', 'shadows:=false', 'rate:=5.0', 'settle_time:=0.5')
    client = None
    try:
        client = Client(ros_domain_id)
        tasks = client.collect(String, 'task', TASK_QOS)
        outcomes = client.collect(String, 'placement_outcome')
        results = client.collect(PlacementResult, 'placement_result')
        goals = client.collect(PoseStamped, 'placement_goal')
        instructions = client.node.create_publisher(String, 'instruction', 10)
        assert client.wait_until(
            lambda: tasks and lifecycle_state(client, '/trace_node') ==
            State.PRIMARY_STATE_ACTIVE, 120.0, period=0.5), launch.log()
        instruction = json.loads(tasks[-1].data)['instruction']
        assert client.wait_until(lambda: instructions.get_subscription_count() > 0, 10.0)
        camera_statuses = (PlacementResult.STATUS_NO_FRAME, PlacementResult.STATUS_STALE_FRAME)
        for _ in range(3):  # a frame may be lost on the way (best-effort camera QoS)
            before = len(results)
            instructions.publish(String(data=instruction))
            assert client.wait_until(lambda: len(results) > before, 60.0), launch.log()
            if results[-1].status not in camera_statuses:
                break
        result = results[-1]
        assert result.instruction == instruction
        if result.status == PlacementResult.STATUS_OK:  # the executor carries the goal out
            assert client.wait_until(lambda: outcomes, 60.0), launch.log()
            outcome = json.loads(outcomes[0].data)
            assert outcome['instruction'] == instruction
            assert isinstance(outcome['success'], bool)
            assert goals and goals[0].header.frame_id == 'world'
            verdict = f'{"success" if outcome["success"] else "failure"} ' \
                      f'{outcome.get("reason", "")}'
        else:  # no goal: trace_node says why (e.g. NO_VALID_PLACEMENT), nothing is executed
            assert result.message and not goals
            verdict = f'no goal: {result.message}'
        print(f'sim.launch.py episode: "{instruction}" -> {verdict}')
    finally:
        stop_cleanly(launch, client)
