"""
trace_node with transforms from tf2 only: a moving camera broadcast from another process.

The goal must use the transform at the image stamp, not the latest one; a frame tf2 does
not know and a stamp past the last transform give NO_TRANSFORM with tf2's reason.
"""

import os
import pathlib
import subprocess
import sys
import time

from memorized_model import GOOD
import numpy as np
import pytest
from ros_harness import expected_world_point, Session, stop_process
from test_trace_node import ANSWER_POINTS, node_params
from trace_ros.msg import PlacementResult

pytestmark = pytest.mark.ros
pytest.importorskip('tf2_ros', reason='tf2_ros is not installed (scripts/setup.sh builds it '
                    'from ../shared/ros_extras; a ROS 2 install has it)')

VELOCITY = 0.5  # m/s along world x
FRAME_AGE = 0.4  # s: the camera stamps its frames this far in the past
HERE = pathlib.Path(__file__).parent


@pytest.fixture(scope='module')
def moving(memorized_model_dir, module_ros_domain_id, tmp_path_factory):
    """trace_node without a static transform, a camera here, a TF broadcaster process."""
    log_dir = tmp_path_factory.mktemp('logs')
    params = node_params(memorized_model_dir, static_transform=[], static_transform_parent='',
                         static_transform_child='', tf_timeout=0.3,
                         generation_timeout=20.0)  # transforms are tested, not timeouts
    t0 = time.time()
    log = open(log_dir / 'tf_broadcaster.log', 'w')
    broadcaster = subprocess.Popen([sys.executable, str(HERE / 'tf_broadcaster.py'), str(t0),
                                    str(VELOCITY)], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, 'PYTHONPATH': os.pathsep.join(
                                       [str(HERE), os.environ.get('PYTHONPATH', '')])})
    session = Session(module_ros_domain_id, params, str(log_dir))
    session.camera.stamp_offset = -FRAME_AGE
    yield session, broadcaster, t0
    session.close()
    stop_process(broadcaster)
    log.close()
    assert 'transforms from tf2' in (log_dir / 'trace_node.log').read_text()


def stamp_of(result) -> float:
    return result.header.stamp.sec + result.header.stamp.nanosec * 1e-9


def ask_ok(session, attempts=3):
    for _ in range(attempts):
        result = session.ask(GOOD)
        if result.status == PlacementResult.STATUS_OK:
            return result
        time.sleep(0.5)
    return result


def test_goal_uses_the_transform_at_the_image_stamp(moving):
    session, _, t0 = moving
    result = ask_ok(session)
    assert result.status == PlacementResult.STATUS_OK, result.message
    stamp = stamp_of(result)
    at_stamp = np.array([expected_world_point(session.camera.camera, x, y)
                         for x, y in ANSWER_POINTS]) + [VELOCITY * (stamp - t0), 0.0, 0.0]
    got = np.array([[p.position.x, p.position.y, p.position.z] for p in result.points])
    np.testing.assert_allclose(got, at_stamp, atol=0.01)
    goal = result.goal.pose.position
    np.testing.assert_allclose([goal.x, goal.y, goal.z], np.median(at_stamp, axis=0),
                               atol=0.01)
    # The newest transform when the answer was computed is at least FRAME_AGE newer: a
    # lookup at "latest" would have moved the goal by VELOCITY * FRAME_AGE = 0.2 m.
    latest_shift = VELOCITY * FRAME_AGE
    assert abs(goal.x - np.median(at_stamp, axis=0)[0] - latest_shift) > latest_shift / 2


def test_unknown_camera_frame_is_no_transform(moving):
    session, _, _ = moving
    session.camera.frame_id = 'unknown_optical_frame'
    try:
        result = session.ask(GOOD)
    finally:
        session.camera.frame_id = 'camera_color_optical_frame'
    assert result.status == PlacementResult.STATUS_NO_TRANSFORM, result.message
    assert 'unknown_optical_frame' in result.message
    assert ask_ok(session).status == PlacementResult.STATUS_OK


def test_stamp_past_the_last_transform_is_extrapolation(moving):
    session, broadcaster, _ = moving
    stop_process(broadcaster)  # the camera moves on, its transforms stop
    time.sleep(FRAME_AGE + 1.0)
    result = session.ask(GOOD)
    assert result.status == PlacementResult.STATUS_NO_TRANSFORM, result.message
    assert 'extrapolation' in result.message.lower(), result.message
