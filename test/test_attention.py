"""Attention maps across the CoR steps: core reductions, the backends, the CLI and the node."""

import copy
import json
import pathlib
import re
import types

import numpy as np
import pytest
from tiny_model import noise_image, tiny_model_dir
from trace_ros.backends import BackendError, make_backend
from trace_ros.backends.reply_attention import image_grid, reply_attention
from trace_ros.core.attention import (attention_panel, build_result, concentration, grid_map,
                                      normalized_entropy, overlay, REPLY, segment_tokens, top_mass)
from trace_ros.core.parsing import parse_answer, STEP_KEYS, step_spans

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval' / 'sim_w2p'
PROMPT = 'Place the red cup to the left of the plate.'
COR = ('1. Goal subtype: object reference.\n'
       '2. Reference: the grey mug, at (0.665, 0.570).\n'
       '3. Target area: the free table surface left of the grey mug, x 0.47-0.62, y 0.56-0.65.\n'
       '4. Coordinates: 3 points spread over the visible part of the target area.\n'
       'Answer: [(0.501, 0.584), (0.484, 0.630), (0.532, 0.643)]')
COR_SPANS = {'goal_subtype': (17, 34), 'reference': (49, 81), 'target_area': (98, 168),
             'coordinates': (185, 242), 'answer': (251, 299)}


def word_offsets(text):
    return [match.span() for match in re.finditer(r'\S+|\s+', text)]


def test_step_spans_are_the_parsed_steps():
    spans = step_spans(COR)
    assert spans == COR_SPANS
    parsed = parse_answer(COR)
    assert COR[slice(*spans['reference'])].rstrip('.') == parsed.reference
    assert spans['answer'] == parsed.span
    assert step_spans('') == {} and step_spans('no steps here') == {}
    assert list(step_spans('Answer: [(0.1, 0.2)]')) == ['answer']


def test_tokens_are_segmented_into_the_steps():
    offsets = word_offsets(COR)
    segments = segment_tokens(offsets, step_spans(COR))
    assert list(segments) == list(STEP_KEYS)
    for name, tokens in segments.items():
        start, end = COR_SPANS[name]
        assert COR[offsets[tokens[0]][0]:offsets[tokens[-1]][1]] == COR[start:end]
    labels = {i for i, (start, _) in enumerate(offsets) if COR[start:].startswith('Reference:')}
    assert labels and not labels & {t for tokens in segments.values() for t in tokens}
    # A token across two spans goes to the one it overlaps most.
    assert segment_tokens([(0, 4), (4, 10)], {'a': (0, 3), 'b': (3, 10)}) == \
        {'a': [0], 'b': [1]}


def test_maps_are_normalized_grids():
    offsets = word_offsets(COR)
    attention = np.random.default_rng(0).random((2, 3, len(offsets), 12)) * 0.05
    result = build_result(COR, offsets, attention, (3, 4), (0, 1), token_maps=True)
    assert list(result.maps) == [REPLY, *STEP_KEYS]
    for name, attention_map in result.maps.items():
        assert attention_map.shape == (3, 4)
        assert attention_map.sum() == pytest.approx(1.0)
        assert 0.0 < result.image_share[name] < 0.6
    assert result.token_maps.shape == (len(offsets), 3, 4)
    np.testing.assert_allclose(result.token_maps.sum((1, 2)), 1.0)
    np.testing.assert_allclose(grid_map(np.zeros(6), (2, 3)), np.full((2, 3), 1 / 6))


def test_concentration_of_uniform_and_one_hot_maps():
    uniform = np.full((10, 10), 0.01)
    one_hot = np.zeros((10, 10))
    one_hot[3, 4] = 1.0
    assert normalized_entropy(uniform) == pytest.approx(1.0)
    assert normalized_entropy(one_hot) == 0.0
    assert top_mass(uniform) == pytest.approx(0.1) and top_mass(one_hot) == 1.0
    assert concentration(one_hot) == {'entropy': 0.0, 'top10_mass': 1.0}


def test_overlay_and_panel():
    image = noise_image(60, 80)
    attention_map = np.zeros((4, 4))
    attention_map[0, 0] = 1.0
    blended = overlay(image, attention_map)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    assert blended[:10, :10].mean() > blended[-10:, -10:].mean()  # bright where it looked
    panel = attention_panel(image, {'reply': attention_map, 'answer': attention_map},
                            tile_height=30)
    assert panel.shape == (30, 80, 3)
    with pytest.raises(ValueError):
        attention_panel(image, {})


@pytest.fixture(scope='module')
def backend():
    with make_backend('transformers', model=str(tiny_model_dir()), device='cpu',
                      max_new_tokens=16) as loaded:
        yield loaded


def test_generated_reply_maps(backend):
    result = backend.attention_maps(noise_image(), PROMPT, token_maps=True)
    assert result.text == backend.generate(noise_image(), PROMPT).text
    assert result.grid == (8, 8) and result.layers == (0, 1, 2, 3)
    assert result.spans == step_spans(result.text)
    assert set(result.maps) == {REPLY, *result.spans}
    for attention_map in result.maps.values():
        assert attention_map.shape == (8, 8)
        assert attention_map.sum() == pytest.approx(1.0)
    assert result.token_maps.shape == (len(result.offsets), 8, 8)


def test_teacher_forced_matches_greedy_generation(backend):
    result = backend.attention_maps(noise_image(), PROMPT, token_maps=True)
    model, inputs = backend._model, backend._inputs(noise_image(), PROMPT)
    _, positions = image_grid(model.config, inputs)
    config = copy.deepcopy(backend._generation_config)
    config.update(max_new_tokens=16, output_attentions=True, return_dict_in_generate=True)
    previous = model.config._attn_implementation
    model.set_attn_implementation('eager')
    try:
        steps = model.generate(**inputs, generation_config=config).attentions
    finally:
        model.set_attn_implementation(previous)
    generated = np.stack([np.mean([layer[0, :, -1, positions].numpy() for layer in step], (0, 1))
                          for step in steps])[:len(result.offsets)]
    generated /= generated.sum(1, keepdims=True)
    np.testing.assert_allclose(result.token_maps.reshape(len(generated), -1), generated,
                               atol=1e-6)


def test_given_reply_is_scored_per_step(backend):
    result = backend.attention_maps(noise_image(), PROMPT, text=COR, layers=[-1])
    assert result.text == COR and result.layers == (3,)
    assert result.spans == COR_SPANS
    assert list(result.maps) == [REPLY, *STEP_KEYS]
    for attention_map in result.maps.values():
        assert attention_map.shape == (8, 8)
        assert attention_map.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match='layers'):
        backend.attention_maps(noise_image(), PROMPT, text=COR, layers=[4])


def test_qwen2_vl_grid_from_merged_patches():
    import torch
    from PIL import Image
    from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessorPil)
    image_token = 90
    config = Qwen2VLConfig(
        text_config={'vocab_size': 100, 'hidden_size': 32, 'num_hidden_layers': 2,
                     'num_attention_heads': 2, 'num_key_value_heads': 1,
                     'intermediate_size': 64, 'max_position_embeddings': 256,
                     'rope_scaling': {'type': 'mrope', 'mrope_section': [2, 3, 3]},
                     'bos_token_id': 1, 'eos_token_id': 2, 'pad_token_id': 0},
        vision_config={'depth': 1, 'embed_dim': 16, 'hidden_size': 32, 'num_heads': 2,
                       'mlp_ratio': 2, 'patch_size': 14, 'spatial_merge_size': 2},
        image_token_id=image_token, video_token_id=91, vision_start_token_id=92,
        vision_end_token_id=93)
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).eval()
    processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    inputs = dict(processor(images=[Image.fromarray(noise_image())], return_tensors='pt'))
    tokens = int(inputs['image_grid_thw'][0].prod()) // 4
    ids = torch.tensor([[5, 92] + [image_token] * tokens + [93, 6, 7]])
    inputs.update(input_ids=ids, attention_mask=torch.ones_like(ids),
                  mm_token_type_ids=(ids == image_token).long())
    grid, positions = image_grid(model.config, inputs)
    assert grid == (3, 4) and positions.tolist() == list(range(2, 14))
    attention = reply_attention(model, inputs, [8, 9, 10], positions, (0, 1))
    assert attention.shape == (2, 2, 3, 12)
    assert model.config.text_config._attn_implementation != 'eager'
    other = types.SimpleNamespace(model_type='paligemma')
    with pytest.raises(BackendError, match="model type 'paligemma'"):
        image_grid(other, inputs)


def test_openai_backend_cannot_provide_attention():
    with make_backend('openai', base_url='http://127.0.0.1:9/v1', model='m') as client:
        with pytest.raises(BackendError, match='in-process transformers backend; '
                                               'OpenAIBackend cannot'):
            client.attention_maps(noise_image(), PROMPT)


def test_cli_writes_maps_figures_and_summary(tmp_path):
    from trace_train.attention import main
    summary = main(['--data', str(DATA), '--model', str(tiny_model_dir()), '--out',
                    str(tmp_path), '--limit', '2', '--layers', '-1', '--device', 'cpu',
                    '--max-new-tokens', '8'])
    assert summary['num_samples'] == 2 and summary['steps'][REPLY]['count'] == 2
    assert 0.0 <= summary['steps'][REPLY]['entropy_mean'] <= 1.0
    written = json.loads((tmp_path / 'summary.json').read_text())
    assert [row['name'] for row in written['samples']] == ['q0', 'q1']
    for name in ('q0', 'q1'):
        assert (tmp_path / name / 'figure.png').is_file()
        assert (tmp_path / name / f'{REPLY}.png').is_file()
    assert (tmp_path / 'summary.png').is_file()


@pytest.mark.ros
def test_node_publishes_the_attention_image(ros_domain_id, tmp_path):
    from ros_harness import OPTICAL_FRAME, Session, STATIC_CAMERA
    from sensor_msgs.msg import Image
    session = Session(ros_domain_id, {
        'model': str(tiny_model_dir()), 'max_new_tokens': 8, 'publish_attention': True,
        **STATIC_CAMERA,
        'max_frame_age': 5.0, 'frame_wait_timeout': 5.0, 'camera_reliability': 'reliable'},
        str(tmp_path))
    try:
        images = session.client.collect(Image, 'attention_image')
        for _ in range(3):  # under load the first camera frames may not have arrived yet
            result = session.ask(PROMPT)
            if result.reasoning:
                break
        # the random model's reply does not parse: attention is still published
        assert result.reasoning, f'status {result.status}: {result.message}'
        assert session.client.wait_until(lambda: images, 20.0)
        assert images[0].header.stamp == result.header.stamp
        assert images[0].header.frame_id == OPTICAL_FRAME
        assert images[0].height == 240 and images[0].width == 320  # one 'reply' tile
    finally:
        session.close()


def test_embedded_model_maps_follow_its_own_reasoning_steps():
    from PIL import Image
    from trace_ros.core.prompts import build_prompt
    from trace_ros.core.where2place import load_questions
    from trace_ros.models import default_model_dir
    question = load_questions(str(DATA))[0]
    image = np.asarray(Image.open(DATA / 'images' / question['image']).convert('RGB'))
    with make_backend('transformers', model=default_model_dir(), device='cpu',
                      max_new_tokens=320) as embedded:
        result = embedded.attention_maps(image, build_prompt(question['text']))
    assert result.grid == (14, 14)  # 224 px / patch 16
    assert result.spans == step_spans(result.text)
    assert set(STEP_KEYS) <= set(result.maps)  # trace-tiny writes every CoR step
    for name, grid in result.maps.items():
        assert grid.shape == (14, 14) and np.isclose(grid.sum(), 1.0), name
        assert 0.0 < result.image_share[name] < 1.0
