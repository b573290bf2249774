"""trace_node's lifecycle: what each transition creates and frees, and requests while inactive."""

import threading

import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from trace_ros.msg import PlacementResult

pytestmark = pytest.mark.ros


@pytest.fixture
def node(memorized_model_dir, ros_domain_id):
    from trace_ros.ros.trace_node import TraceNode
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id,
               args=['--ros-args', '-p', f'model:={memorized_model_dir}'])
    trace = TraceNode(context=context)
    executor = MultiThreadedExecutor(context=context)
    executor.add_node(trace)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield trace
    executor.shutdown()
    trace.destroy_node()
    rclpy.try_shutdown(context=context)


def test_transitions_load_subscribe_and_free(node):
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node._backend is not None
    assert node.count_subscribers('instruction') == 0  # inputs only while active
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    topics = {name for name, _ in node.get_subscriber_names_and_types_by_node(
        node.get_name(), node.get_namespace())}
    assert {'/instruction', '/color/image_raw', '/depth/image_raw',
            '/color/camera_info'} <= topics
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    topics = {name for name, _ in node.get_subscriber_names_and_types_by_node(
        node.get_name(), node.get_namespace())}
    assert '/instruction' not in topics
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node._backend is None


def test_request_while_inactive_is_answered_not_active(node):
    from trace_ros.ros.trace_node import Request
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    request = Request('put it down', 0, 0.0)
    assert not node._submit(request)
    assert request.done.is_set()
    assert request.result.status == PlacementResult.STATUS_BUSY
    assert 'not active' in request.result.message


def test_bad_parameter_fails_configure_cleanly(memorized_model_dir, ros_domain_id):
    from trace_ros.ros.trace_node import TraceNode
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id,
               args=['--ros-args', '-p', 'model:=/nonexistent/model/dir'])
    try:
        trace = TraceNode(context=context)
        assert trace.trigger_configure() != TransitionCallbackReturn.SUCCESS
        trace.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
