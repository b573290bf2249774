"""
Opt-in: a real vLLM server (CPU build, its own venv) behind trace_node's OpenAI backend.

    bash scripts/setup_vllm.sh            # once; prints the line below
    export TRACE_VLLM_PYTHON=~/.cache/trace_ros/vllm-venv/bin/python
    python -m pytest test/test_vllm_server.py

vLLM serves a tiny LLaVA built from a config (random weights: vLLM's CPU attention takes head
sizes 32, 64, 80, ..., so the 48 of trace-tiny's decoder is not servable), saved in the hub's
LLaVA layout. trace_node asks it over HTTP with the CoR grammar in ``structured_outputs``;
vLLM's own structured decoding makes the random model's reply parse, and the node publishes
a goal from it.
"""

import os
import socket
import subprocess
import time
import urllib.request

import pytest

pytestmark = pytest.mark.ros
VLLM_PYTHON = os.environ.get('TRACE_VLLM_PYTHON', '')
if not VLLM_PYTHON:
    pytest.skip('opt-in: bash scripts/setup_vllm.sh, then set TRACE_VLLM_PYTHON',
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def vllm_server(tmp_path_factory):
    from tiny_model import TEXTS
    from trace_train.model.tiny_vlm import build_servable_tiny_llava
    model = build_servable_tiny_llava(tmp_path_factory.mktemp('model') / 'tiny-llava-hf', TEXTS)
    scratch = tmp_path_factory.mktemp('vllm')
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE='1', VLLM_CACHE_ROOT=str(scratch),
               TORCHINDUCTOR_CACHE_DIR=str(scratch), TMPDIR=str(scratch))
    env.pop('PYTHONPATH', None)  # vLLM's venv has its own torch and transformers
    log = open(scratch / 'server.log', 'w')
    server = subprocess.Popen(
        [VLLM_PYTHON, '-m', 'vllm.entrypoints.openai.api_server', '--model', str(model),
         '--port', str(port), '--enforce-eager', '--max-model-len', '2048'],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f'http://127.0.0.1:{port}/v1'
    deadline = time.monotonic() + 300.0
    try:
        while True:
            assert server.poll() is None, (scratch / 'server.log').read_text()[-4000:]
            assert time.monotonic() < deadline, 'vLLM did not come up in 300 s'
            try:
                urllib.request.urlopen(url + '/models', timeout=2.0).read()
                break
            except OSError:
                time.sleep(2.0)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_trace_node_gets_goals_from_a_vllm_server(vllm_server, ros_domain_id, tmp_path):
    from ros_harness import Session
    from test_trace_node_backends import params
    from trace_ros.core.answer_format import matches_grammar
    from trace_ros.msg import PlacementResult
    session = Session(ros_domain_id, params(
        backend='openai', openai_base_url=vllm_server, openai_max_retries=0,
        max_new_tokens=800, generation_timeout=120.0, max_frame_age=5.0,
        frame_wait_timeout=5.0, refine_placement=False), str(tmp_path))
    try:
        results = [session.ask(instruction, timeout=180.0) for instruction in (
            'Place the red cup to the left of the plate.',
            'Put the bowl in the free space between the mug and the box.')]
    finally:
        session.close()
    for result in results:
        assert matches_grammar(result.reasoning), result.reasoning  # vLLM applied the grammar
        assert result.status == PlacementResult.STATUS_OK, result.message
        assert result.goal.header.frame_id == 'world' and len(result.points) >= 1
