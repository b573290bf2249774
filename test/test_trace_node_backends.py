"""
trace_node with long generations (timeout, cancel) and with the OpenAI-compatible backend.

The long generation comes from a real random tiny LLaVA whose end token is held back by a
generation option (min_new_tokens), so only the timeout or a cancel stops it.
"""

import json
import time

import pytest
from ros_harness import Session, STATIC_CAMERA
from trace_ros.backends import make_backend
from trace_ros.backends.openai_server import OpenAIServer
from trace_ros.msg import PlacementResult

pytestmark = pytest.mark.ros

ANY = 'put the cup somewhere'


def params(**overrides):
    base = {**STATIC_CAMERA, 'max_frame_age': 1.0, 'camera_reliability': 'reliable'}
    base.update(overrides)
    return base


@pytest.fixture(scope='module')
def endless(module_ros_domain_id, tmp_path_factory):
    from tiny_model import tiny_model_dir
    s = Session(module_ros_domain_id, params(
        model=str(tiny_model_dir()), max_new_tokens=8192, generation_timeout=2.0,
        generation_options=json.dumps({'min_new_tokens': 8192}), structured_decoding=False),
        str(tmp_path_factory.mktemp('logs')))
    yield s
    s.close()


def test_generation_past_its_timeout_is_model_timeout(endless):
    started = time.monotonic()
    result = endless.ask(ANY, timeout=30.0)
    assert result.status == PlacementResult.STATUS_MODEL_TIMEOUT, result.message
    assert 2.0 <= time.monotonic() - started < 10.0
    assert result.reasoning  # the partial text is kept


def test_action_streams_then_cancel_stops_generation(endless):
    handle, feedback = endless.send_goal(ANY)
    assert endless.client.wait_until(lambda: len(feedback) >= 3, 10.0)
    handle.cancel_goal_async()
    result_future = handle.get_result_async()
    assert endless.client.wait_until(result_future.done, 10.0)
    result = result_future.result().result.result
    assert result.status == PlacementResult.STATUS_CANCELED, result.message
    total = result.total_time.sec + result.total_time.nanosec * 1e-9
    assert total < 2.0  # stopped by the cancel, before the 2 s generation timeout
    assert result.reasoning.startswith(feedback[-1].text[:20])


def test_openai_backend_answers_through_a_server_then_reports_it_gone(
        memorized_model_dir, ros_domain_id, tmp_path):
    from memorized_model import GOOD
    server = OpenAIServer(make_backend('transformers', model=str(memorized_model_dir)))
    thread = server.start()
    # The camera publisher shares this process (and its GIL) with the server's model, so a
    # loaded machine can delay frames; this test is about the backend, not frame freshness.
    session = Session(ros_domain_id, params(backend='openai', openai_base_url=server.url,
                                            openai_max_retries=0, generation_timeout=10.0,
                                            max_frame_age=5.0),
                      str(tmp_path))
    try:
        result = session.ask(GOOD)
        assert result.status == PlacementResult.STATUS_OK, result.message
        assert len(result.points) == 3 and all(p.has_depth for p in result.points)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        result = session.ask(GOOD)
        assert result.status == PlacementResult.STATUS_BACKEND_ERROR, result.message
        result = session.ask(GOOD)  # the node stays up and answers again
        assert result.status == PlacementResult.STATUS_BACKEND_ERROR
    finally:
        session.close()
        if thread.is_alive():
            server.shutdown()
            server.server_close()


def test_stalled_server_is_model_timeout(ros_domain_id, tmp_path):
    import socket
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)  # accepts connections, never answers
    url = f'http://127.0.0.1:{listener.getsockname()[1]}/v1'
    session = Session(ros_domain_id, params(backend='openai', openai_base_url=url,
                                            openai_model='m', openai_max_retries=0,
                                            generation_timeout=1.5), str(tmp_path))
    try:
        result = session.ask(ANY, timeout=20.0)
        assert result.status == PlacementResult.STATUS_MODEL_TIMEOUT, result.message
    finally:
        session.close()
        listener.close()
