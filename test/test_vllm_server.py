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

import pytest

pytestmark = pytest.mark.ros
VLLM_PYTHON = os.environ.get('TRACE_VLLM_PYTHON', '')
if not VLLM_PYTHON:
    pytest.skip('opt-in: bash scripts/setup_vllm.sh, then set TRACE_VLLM_PYTHON',
                allow_module_level=True)


@pytest.fixture(scope='module')
def vllm_server(tmp_path_factory):
    from server_harness import free_port, running_server, vllm_command
    from tiny_model import TEXTS
    from trace_train.model.tiny_vlm import build_servable_tiny_llava
    model = build_servable_tiny_llava(tmp_path_factory.mktemp('model') / 'tiny-llava-hf', TEXTS)
    scratch = tmp_path_factory.mktemp('vllm')
    port = free_port()
    command, env = vllm_command(VLLM_PYTHON, str(model), port, scratch)
    with running_server(command, env, port, scratch / 'server.log', 300.0) as (_, url):
        yield url


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
