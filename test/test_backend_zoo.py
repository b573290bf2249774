"""Tiny Qwen2.5-VL and Qwen3-VL checkpoints in hub layout through the in-process backend."""

import importlib.util

import numpy as np
from PIL import Image
import pytest
from tiny_model import noise_image
from tiny_zoo import build_qwen2_5_vl, build_qwen3_vl
from trace_ros.backends import make_backend
from trace_ros.backends.processors import load_processor
from trace_ros.core.model_profiles import resolve_profile

BUILDERS = {'qwen2_5_vl': (build_qwen2_5_vl, 14), 'qwen3_vl': (build_qwen3_vl, 16)}


@pytest.fixture(scope='module', params=sorted(BUILDERS))
def zoo_model(request, tmp_path_factory):
    build, patch = BUILDERS[request.param]
    return request.param, build(tmp_path_factory.mktemp(request.param)), patch


def test_generates_text_through_the_backend(zoo_model):
    name, directory, _ = zoo_model
    with make_backend('transformers', model=str(directory), device='cpu',
                      max_new_tokens=6) as backend:
        first = backend.generate(noise_image(), 'Put the mug left of the bowl.')
        second = backend.generate(noise_image(), 'Put the mug left of the bowl.')
    assert first.text and first.text == second.text
    assert 0 < first.num_tokens <= 6 and first.model_id == directory.name


def test_processor_loads_without_torchvision(zoo_model):
    name, directory, _ = zoo_model
    processor = load_processor(str(directory))
    if importlib.util.find_spec('torchvision') is None:
        assert type(processor).__name__.startswith('ImageOnly')
    assert processor.image_processor.__class__.__name__ == 'Qwen2VLImageProcessorPil'


def test_profile_input_size_is_the_processor_resize(zoo_model):
    name, directory, patch = zoo_model
    profile, _ = resolve_profile('auto', str(directory))
    assert profile.name == name
    processor = load_processor(str(directory))
    for width, height in ((150, 100), (640, 480), (61, 333)):
        image = Image.fromarray(np.zeros((height, width, 3), np.uint8))
        _, rows, cols = processor.image_processor(image, return_tensors='pt')[
            'image_grid_thw'][0].tolist()
        if profile.convention == 'resized_pixels':
            assert profile.input_size((width, height)) == (cols * patch, rows * patch)
        else:
            assert profile.input_size((width, height)) is None


@pytest.mark.ros
def test_answers_through_trace_node_over_dds(zoo_model, ros_domain_id, tmp_path):
    from ros_harness import Session
    from test_trace_node_backends import params
    from trace_ros.msg import PlacementResult
    name, directory, _ = zoo_model
    session = Session(ros_domain_id, params(model=str(directory), max_new_tokens=12,
                                            generation_timeout=60.0, max_frame_age=5.0),
                      str(tmp_path))
    try:
        result = session.ask('Put the mug left of the bowl.', timeout=120.0)
    finally:
        session.close()
    log = (tmp_path / 'trace_node.log').read_text()
    assert f'profile {name}' in log, log
    # The random model writes 12 tokens of text without points: the node answers with them.
    assert result.reasoning, result.message
    assert result.status == PlacementResult.STATUS_PARSE_ERROR, result.message
