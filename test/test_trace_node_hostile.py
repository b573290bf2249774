"""
Hostile input over DDS: each case gets a clear status, then a good request is answered.

The node runs in its own process with the shipped camera QoS (no reliability override:
the test camera publishes best-effort, as sensor drivers do).
"""

import time

from memorized_model import GOOD
import pytest
from ros_harness import OPTICAL_FRAME, Session, STATIC_CAMERA
from std_msgs.msg import String
from test_trace_node import ask_fresh, check_good
from trace_ros.action import FindPlacement
from trace_ros.msg import PlacementResult

pytestmark = pytest.mark.ros

QUEUE = 2


@pytest.fixture(scope='module')
def session(memorized_model_dir, module_ros_domain_id, tmp_path_factory):
    params = {'backend': 'transformers', 'model': str(memorized_model_dir), **STATIC_CAMERA,
              'max_new_tokens': 4000, 'generation_timeout': 20.0, 'max_frame_age': 1.0,
              'instruction_queue_size': QUEUE, 'max_instruction_tokens': 64}
    s = Session(module_ros_domain_id, params, str(tmp_path_factory.mktemp('logs')),
                best_effort_camera=True)
    yield s
    alive = s.process.poll() is None
    s.close()
    assert alive, 'trace_node died'


def stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def now(session) -> float:
    return session.client.node.get_clock().now().nanoseconds * 1e-9


def test_shipped_camera_qos_answers_a_best_effort_camera(session):
    check_good(session, ask_fresh(session))


@pytest.mark.parametrize('instruction, words', [
    ('', 'empty'), ('  \t ', 'empty'), ('<image> <|im_end|>', 'special tokens'),
    ('put the mug ' * 70, 'model tokens'),
])
def test_bad_instruction_is_explained(session, instruction, words):
    result = session.ask(instruction, match=False)
    assert result.status == PlacementResult.STATUS_BAD_INSTRUCTION, result.message
    assert words in result.message
    check_good(session, ask_fresh(session))


def test_megabyte_instruction_is_refused_on_arrival(session):
    result = session.ask('put the mug left ' * 60000, timeout=30.0, match=False)
    assert result.status == PlacementResult.STATUS_BAD_INSTRUCTION, result.message
    assert 'max_instruction_chars' in result.message
    check_good(session, ask_fresh(session))


@pytest.mark.parametrize('instruction', [
    'put the mug <image> on the free space', 'put the mug on the <|im_start|>free space',
    'put the mug\x1b on the free\x07 space',
])
def test_special_tokens_and_control_characters_are_neutralized(session, instruction):
    result = ask_fresh(session, instruction, match=False)  # the result echoes it sanitized
    assert result.instruction == GOOD
    check_good(session, result)


def test_nul_does_not_truncate_the_instruction(session):
    from rclpy.serialization import serialize_message
    raw = serialize_message(String(data=GOOD.replace(' on ', ' on @ ')))
    raw = raw.replace(b' @ ', b' \x00 ')  # rclpy itself cannot send a NUL: patch the bytes
    result = session.ask_raw(raw)
    assert result.instruction == GOOD, result.message
    check_good(session, result)


def test_absurd_focal_length_is_no_camera_info(session):
    session.camera.info_override = {'k': [1e-300, 0.0, 319.5, 0.0, 1e-300, 239.5, 0.0, 0.0, 1.0]}
    try:
        time.sleep(0.3)
        result = ask_fresh(session)
        assert result.status == PlacementResult.STATUS_NO_CAMERA_INFO, result.message
        assert 'implausible focal length' in result.message
    finally:
        session.camera.info_override = None
    time.sleep(0.3)
    check_good(session, ask_fresh(session))


def test_frames_from_the_future_are_refused_then_forgotten(session):
    session.camera.stamp_offset = 30.0
    try:
        time.sleep(0.5)
        result = session.ask(GOOD)
        assert result.status == PlacementResult.STATUS_FUTURE_FRAME, result.message
        assert 'future' in result.message
    finally:
        session.camera.stamp_offset = 0.0
    time.sleep(0.3)
    result = ask_fresh(session)
    check_good(session, result)
    assert abs(stamp(result) - now(session)) < 5.0  # a present frame, not the future one


def test_clock_jump_back_does_not_lock_the_synchronizer(session):
    session.camera.stamp_offset = 0.8  # ahead, but within max_future_stamp
    time.sleep(0.5)
    session.camera.stamp_offset = -0.5  # 1.3 s back
    try:
        time.sleep(0.3)
        result = ask_fresh(session)
        check_good(session, result)
        assert stamp(result) < now(session)  # a frame after the jump
    finally:
        session.camera.stamp_offset = 0.0


def test_burst_of_instructions_gets_a_result_each(session):
    time.sleep(1.0)  # let earlier answers drain
    before = len(session.results)
    count = 500
    for _ in range(count):
        session.instructions.publish(String(data=GOOD))
    assert session.client.wait_until(lambda: len(session.results) >= before + count, 120.0), \
        f'{len(session.results) - before} results for {count} instructions'
    statuses = {r.status for r in session.results[before:before + count]}
    assert PlacementResult.STATUS_BUSY in statuses
    assert statuses <= {PlacementResult.STATUS_BUSY, PlacementResult.STATUS_OK,
                        PlacementResult.STATUS_STALE_FRAME}
    time.sleep(1.0)
    check_good(session, ask_fresh(session))


def test_goal_flood_is_answered_and_rejected_beyond_the_queue(session):
    client = session.action
    assert client.wait_for_server(timeout_sec=10.0)
    futures = [client.send_goal_async(FindPlacement.Goal(instruction=GOOD)) for _ in range(40)]
    assert session.client.wait_until(lambda: all(f.done() for f in futures), 60.0), \
        f'{sum(not f.done() for f in futures)} of {len(futures)} goals got no response'
    handles = [f.result() for f in futures]
    accepted = [h for h in handles if h.accepted]
    assert accepted and len(accepted) < len(handles)
    cancels = [h.cancel_goal_async() for h in accepted for _ in range(5)]
    assert session.client.wait_until(lambda: all(c.done() for c in cancels), 60.0), \
        f'{sum(not c.done() for c in cancels)} of {len(cancels)} cancels got no reply'
    results = [h.get_result_async() for h in accepted]
    assert session.client.wait_until(lambda: all(r.done() for r in results), 60.0)
    assert all(r.result().result.result.status in (
        PlacementResult.STATUS_OK, PlacementResult.STATUS_CANCELED) for r in results)
    check_good(session, ask_fresh(session))


def test_action_result_is_kept_beyond_ten_seconds(session):
    handle, _ = session.send_goal(GOOD)
    first = handle.get_result_async()
    assert session.client.wait_until(first.done, 30.0)
    time.sleep(12.0)  # rclpy's default result_timeout is 10 s
    late = handle.get_result_async()
    assert session.client.wait_until(late.done, 10.0)
    assert late.result().result.result.reasoning == first.result().result.result.reasoning
    assert late.result().result.result.instruction == GOOD


def test_explicit_images_with_absurd_intrinsics(session):
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header
    from trace_ros.ros.images import depth_to_msg, rgb_to_msg
    header = Header(frame_id=OPTICAL_FRAME, stamp=session.client.node.get_clock().now().to_msg())
    goal = FindPlacement.Goal(instruction=GOOD, use_images=True,
                              color=rgb_to_msg(session.camera.rgb, header),
                              depth=depth_to_msg(session.camera.depth, '32FC1', header),
                              camera_info=CameraInfo(header=header, width=640, height=480,
                                                     k=[1e-300, 0.0, 319.5, 0.0, 1e-300, 239.5,
                                                        0.0, 0.0, 1.0]))
    handle, _ = session.send_goal(GOOD, goal)
    result = handle.get_result_async()
    assert session.client.wait_until(result.done, 30.0)
    answer = result.result().result.result
    assert answer.status == PlacementResult.STATUS_NO_CAMERA_INFO, answer.message
    check_good(session, ask_fresh(session))
