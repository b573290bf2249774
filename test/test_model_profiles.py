"""Model profiles: the table, detection, prompts and each family's documented reply form."""

import json

import numpy as np
import pytest
from trace_ros.core.answer_format import format_cor_answer
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.model_profiles import (detect_profile, load_profiles, processor_settings,
                                           resolve_profile)
from trace_ros.core.pipeline import locate_placement, RgbdFrame
from trace_ros.core.point_conventions import from_normalized, smart_resize
from trace_ros.core.prompts import build_prompt
from trace_ros.core.transforms import RigidTransform

PROFILES = ('trace', 'robopoint', 'qwen2_5_vl', 'qwen3_vl', 'robobrain2', 'molmo', 'gemini_er')
SIZE = (644, 476)  # multiples of 28: the Qwen2.5-VL input is the image itself
TARGET = (323, 252)  # the pixel every reply points at


def _reply(name: str, pairs) -> str:
    """Write a reply in the form each family's documentation shows."""
    (a, b), = pairs
    if name == 'trace':
        return format_cor_answer('free space', 'the table', 'the free table surface',
                                 [(a, b)], reference_point=(0.5, 0.5))
    if name == 'robopoint':
        return f'[({a:.3f}, {b:.3f})]'
    if name in ('qwen2_5_vl', 'qwen3_vl'):
        return f'```json\n[\n\t{{"point_2d": [{a}, {b}], "label": "free space"}}\n]\n```'
    if name == 'robobrain2':
        return f'<think>The mug is on the left; free space lies right.</think>' \
               f'<answer>[({a}, {b})]</answer>'
    if name == 'molmo':
        return f' <point x="{a:.1f}" y="{b:.1f}" alt="free space">free space</point>'
    return f'```json\n[\n  {{"point": [{a}, {b}], "label": "free space"}}\n]\n```'


def _frame() -> RgbdFrame:
    width, height = SIZE
    camera = PinholeCamera.from_fovy(width, height, 60.0)
    depth = np.full((height, width), 1.0) + np.linspace(0.0, 0.2, width)[None, :]
    return RgbdFrame(np.zeros((height, width, 3), np.uint8), depth, camera, 'camera')


def test_table_has_every_family():
    profiles = load_profiles()
    assert set(PROFILES) <= set(profiles)
    assert profiles['gemini_er'].convention == 'yx_thousandths'
    assert profiles['molmo'].setting('trust_remote_code') is True


@pytest.mark.parametrize('size', [(640, 480), (644, 476), (1920, 1080), (100, 150), (33, 4000)])
def test_smart_resize_matches_transformers(size):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf
    width, height = size
    for low, high in ((3136, 12845056), (3136, 56 * 56 * 4)):
        assert smart_resize(width, height, 28, low, high) == hf(height, width, 28, low, high)[::-1]


@pytest.mark.parametrize('name', PROFILES)
def test_same_target_pixel_gives_the_same_point_and_goal(name):
    profile = load_profiles()[name]
    norm = ((TARGET[0] + 0.5) / SIZE[0], (TARGET[1] + 0.5) / SIZE[1])
    reply = _reply(name, from_normalized([norm], profile.convention, profile.input_size(SIZE)))
    parsed = profile.parse(reply, SIZE)
    assert parsed.ok and len(parsed.points) == 1, parsed.errors
    assert tuple(np.floor(parsed.points[0] * SIZE).astype(int)) == TARGET
    frame, identity = _frame(), RigidTransform.identity()
    goal = locate_placement(frame, reply, identity, parsed=parsed).position
    reference = locate_placement(frame, f'[({norm[0]:.6f}, {norm[1]:.6f})]', identity).position
    assert np.linalg.norm(goal - reference) < 2e-3


def test_qwen2_5_pixels_are_in_the_resized_input():
    profile = load_profiles()['qwen2_5_vl']
    assert profile.input_size((640, 480)) == (644, 476)
    parsed = profile.parse('[{"point_2d": [643, 0], "label": "corner"}]', (640, 480))
    np.testing.assert_allclose(parsed.points, [[(643 + 0.5) / 644, 0.5 / 476]])
    small = profile.with_settings(max_pixels=56 * 56 * 4)
    assert small.input_size((640, 480)) == (112, 84)


def test_documented_reply_forms():
    profiles = load_profiles()
    gemini = profiles['gemini_er'].parse(
        '[{"point": [250, 750], "label": "cup"}, {"point": [500, 100], "label": "bowl"}]', SIZE)
    np.testing.assert_allclose(gemini.points, [[0.75, 0.25], [0.1, 0.5]])
    molmo = profiles['molmo'].parse(
        '<points x1="61.5" y1="40.4" x2="10.0" y2="90.0" alt="spots">spots</points>', SIZE)
    np.testing.assert_allclose(molmo.points, [[0.615, 0.404], [0.1, 0.9]])
    qwen3 = profiles['qwen3_vl'].parse('[{"point_2d": [1000, 0]}]', SIZE)
    np.testing.assert_allclose(qwen3.points, [[1.0, 0.0]])


def test_cor_reply_keeps_its_steps_and_reads_only_the_answer():
    reply = ('1. Goal subtype: free space.\n2. Reference: the bowl, at (0.500, 0.500).\n'
             '3. Target area: left of the bowl.\n4. Coordinates: one point.\n'
             'Answer: [{"point_2d": [100, 200], "label": "placement"}]')
    parsed = load_profiles()['qwen3_vl'].parse(reply, SIZE)
    assert parsed.goal_subtype == 'free space' and parsed.reference.startswith('the bowl')
    np.testing.assert_allclose(parsed.points, [[0.1, 0.2]])


def test_out_of_range_points_are_rejected_with_reasons():
    profiles = load_profiles()
    parsed = profiles['molmo'].parse('<point x="150.0" y="20.0" alt="a">a</point>', SIZE)
    assert not parsed.ok and parsed.rejected == 1 and 'above 100' in parsed.errors[0]
    parsed = profiles['qwen2_5_vl'].parse('[{"point_2d": [900, 20]}]', SIZE)
    assert not parsed.ok and 'outside the 644x476' in parsed.errors[0]
    parsed = profiles['gemini_er'].parse('I cannot see a table.', SIZE)
    assert not parsed.ok and 'no points' in parsed.errors[0]


def test_prompts():
    profiles = load_profiles()
    instruction = 'put the mug left of the bowl'
    assert profiles['trace'].build_prompt(instruction, 'cor') == build_prompt(instruction, 'cor')
    assert profiles['robopoint'].build_prompt(instruction, 'plain') == build_prompt(
        instruction, 'plain')
    cor = profiles['gemini_er'].build_prompt(instruction + '. Your answer should be formatted '
                                             'as a list of tuples.', 'cor')
    assert cor.startswith('put the mug left of the bowl. Reason step by step')
    assert 'Answer: [{"point": [y, x]' in cor and 'formatted' not in cor
    assert '[y, x] format normalized to 0-1000' in profiles['gemini_er'].build_prompt(
        instruction, 'plain')
    with pytest.raises(ValueError, match='prompt style'):
        profiles['molmo'].build_prompt(instruction, 'json')


def _model_dir(tmp_path, name, config, preprocessor=None):
    directory = tmp_path / name
    directory.mkdir()
    (directory / 'config.json').write_text(json.dumps(config))
    if preprocessor:
        (directory / 'preprocessor_config.json').write_text(json.dumps(preprocessor))
    return str(directory)


def test_detection(tmp_path):
    qwen = {'model_type': 'qwen2_5_vl', 'architectures': ['Qwen2_5_VLForConditionalGeneration']}
    assert detect_profile(_model_dir(tmp_path, 'Qwen2.5-VL-7B', qwen))[0] == 'qwen2_5_vl'
    assert detect_profile(_model_dir(tmp_path, 'RoboBrain2.0-7B', qwen))[0] == 'robobrain2'
    qwen3 = {'model_type': 'qwen3_vl', 'architectures': ['Qwen3VLForConditionalGeneration']}
    assert detect_profile(_model_dir(tmp_path, 'q3', qwen3))[0] == 'qwen3_vl'
    llava = {'model_type': 'llava', 'architectures': ['LlavaForConditionalGeneration']}
    assert detect_profile(_model_dir(tmp_path, 'robopoint-v1-13b', llava))[0] == 'robopoint'
    assert detect_profile(_model_dir(tmp_path, 'trace-13b', llava))[0] == 'trace'
    molmo = {'model_type': 'molmo', 'architectures': ['MolmoForCausalLM']}
    assert detect_profile(_model_dir(tmp_path, 'm', molmo))[0] == 'molmo'
    assert detect_profile(None, 'gemini-robotics-er-1.5-preview')[0] == 'gemini_er'
    assert detect_profile(None, 'BAAI/RoboBrain2.0-32B')[0] == 'robobrain2'
    assert detect_profile(str(tmp_path / 'absent'), 'some-model')[0] == 'trace'


def test_resolve_takes_the_model_resize_settings(tmp_path):
    qwen = {'model_type': 'qwen2_5_vl'}
    settings = {'min_pixels': 3136, 'max_pixels': 12544, 'patch_size': 14, 'merge_size': 2}
    directory = _model_dir(tmp_path, 'q', qwen, settings)
    assert processor_settings(directory) == {'min_pixels': 3136, 'max_pixels': 12544,
                                             'resize_factor': 28}
    profile, why = resolve_profile('auto', directory)
    assert profile.name == 'qwen2_5_vl' and 'qwen2_5_vl' in why
    assert profile.input_size((150, 100)) == (112, 84)
    assert resolve_profile('molmo')[0].name == 'molmo'
    with pytest.raises(ValueError, match='model_profile'):
        resolve_profile('llama')
