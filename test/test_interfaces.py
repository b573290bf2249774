"""The generated interfaces import, and a PlacementResult survives a trip through DDS."""

import os
import subprocess
import sys
import time

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
import pytest
import rclpy
from rclpy.node import Node
from ros_harness import stop_process
from trace_ros.action import FindPlacement
from trace_ros.msg import CorSteps, PlacementPoint, PlacementResult

HERE = os.path.dirname(__file__)


def full_result() -> PlacementResult:
    msg = PlacementResult()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000000, 123456789
    msg.header.frame_id = 'camera_color_optical_frame'
    msg.status = PlacementResult.STATUS_OK
    msg.instruction = 'put the mug left of the bowl'
    msg.model_id = 'trace-tiny'
    msg.reasoning = '1. Goal subtype: object reference.\nAnswer: [(0.25, 0.5)]'
    msg.steps = CorSteps(goal_subtype='object reference', reference='the bowl at (0.5, 0.5)',
                         target_area='left of the bowl')
    msg.points = [PlacementPoint(x_norm=0.25, y_norm=0.5, u=159.5, v=239.5, has_depth=True,
                                 depth=0.8, position_camera=Point(x=-0.2, y=0.0, z=0.8),
                                 position=Point(x=0.5, y=0.2, z=0.75))]
    msg.target_frame = 'world'
    msg.goal.header = msg.header
    msg.goal.header.frame_id = 'world'
    msg.goal.pose.position = Point(x=0.5, y=0.2, z=0.75)
    msg.goal.pose.orientation.w = 1.0
    msg.inference_time = Duration(sec=0, nanosec=95_000_000)
    msg.total_time = Duration(sec=0, nanosec=99_000_000)
    return msg


def test_status_codes_are_distinct():
    codes = {name: getattr(PlacementResult, name) for name in dir(PlacementResult)
             if name.startswith('STATUS_')}
    assert len(codes) >= 12
    assert len(set(codes.values())) == len(codes)


def test_action_parts_exist():
    goal = FindPlacement.Goal(instruction='x', use_images=False)
    assert isinstance(FindPlacement.Result().result, PlacementResult)
    assert hasattr(FindPlacement.Feedback(), 'text_delta')
    assert goal.use_images is False


@pytest.mark.ros
def test_result_round_trip_between_processes(ros_domain_id):
    echo = subprocess.Popen([sys.executable, os.path.join(HERE, 'echo_node.py'),
                             'trace_ros/msg/PlacementResult'],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    node = Node('round_trip', context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []
    try:
        assert echo.stdout.readline().strip() == 'ready'
        pub = node.create_publisher(PlacementResult, 'in', 10)
        node.create_subscription(PlacementResult, 'out', received.append, 10)
        sent = full_result()
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            pub.publish(sent)
            executor.spin_once(timeout_sec=0.2)
        assert received, 'no echo within 20 s'
        assert received[0] == sent
    finally:
        stop_process(echo)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_core_status_mirrors_message_constants():
    from trace_ros.core.status import Status
    for status in Status:
        assert getattr(PlacementResult, f'STATUS_{status.name}') == status.value
    names = {n[len('STATUS_'):] for n in dir(PlacementResult) if n.startswith('STATUS_')}
    assert names == {s.name for s in Status}
