"""
Lifecycle cycling over DDS while a 30 Hz camera publishes and instructions arrive.

deactivate -> cleanup -> configure -> activate, driven from another process like a
lifecycle manager. No transition may crash the node or go unanswered, no frame from before
a cleanup may be answered on, and the first request after activate gets a fresh frame.
"""

import threading
import time

from memorized_model import GOOD
import pytest
from ros_harness import Session, STATIC_CAMERA
from std_msgs.msg import String
from test_trace_node import check_good

pytestmark = pytest.mark.ros

CYCLES = 30


@pytest.fixture(scope='module', params=['message_filters', 'trace_ros'])
def session(request, memorized_model_dir, module_ros_domain_id, tmp_path_factory):
    params = {'backend': 'transformers', 'model': str(memorized_model_dir), **STATIC_CAMERA,
              'max_new_tokens': 4000, 'generation_timeout': 20.0, 'max_frame_age': 2.0,
              'frame_wait_timeout': 3.0,
              # The feeder must not fill the queue on a slow machine: a full queue rightly
              # rejects the test's goal, and rejection is not what this test is about.
              'instruction_queue_size': 100,
              'use_message_filters': request.param == 'message_filters'}
    s = Session(module_ros_domain_id, params, str(tmp_path_factory.mktemp('logs')),
                best_effort_camera=True, camera_rate_hz=30.0)
    yield s
    s.close()


def stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_lifecycle_cycles_under_load_never_crash(session):
    stop = threading.Event()

    def instructions():
        while not stop.is_set():
            session.instructions.publish(String(data=GOOD))
            time.sleep(0.1)
    feeder = threading.Thread(target=instructions, daemon=True)
    feeder.start()
    try:
        for cycle in range(CYCLES):
            for transition in ('deactivate', 'cleanup', 'configure', 'activate'):
                assert session.change_state(transition), f'cycle {cycle}: {transition} failed'
                assert session.process.poll() is None, f'cycle {cycle}: died at {transition}'
                if transition == 'cleanup':
                    cleaned = session.client.node.get_clock().now().nanoseconds * 1e-9
            handle, _ = session.send_goal(GOOD)
            future = handle.get_result_async()
            assert session.client.wait_until(future.done, 30.0)
            result = future.result().result.result
            check_good(session, result)  # a fresh frame: not NO_FRAME, not STALE_FRAME
            assert stamp(result) > cleaned, f'cycle {cycle}: answered on a frame before cleanup'
    finally:
        stop.set()
        feeder.join()
    assert session.process.poll() is None
