"""trace_train.convert on a tiny checkpoint fabricated in the original LLaVA (RoboPoint) layout."""

import json

import numpy as np
from PIL import Image
import pytest
from safetensors.torch import save_file
from tiny_model import noise_image
from tiny_zoo import tiny_tokenizer
import torch
from trace_ros.backends import make_backend
from trace_ros.core.model_profiles import detect_profile
from trace_train.convert import convert, main
from transformers import (AutoModelForImageTextToText, AutoProcessor, CLIPVisionConfig,
                          CLIPVisionModel, LlamaConfig, LlamaForCausalLM)

LLAMA_SPECIAL = ['<unk>', '<s>', '</s>']
MM_HIDDEN = 32


def _fabricate(root, tower_inside: bool):
    """Write a tiny LLaVA-1.5 checkpoint as the original repository saves it, and a CLIP dir."""
    torch.manual_seed(0)
    src, vision_dir = root / 'robopoint-tiny', root / 'clip-tiny'
    src.mkdir()
    vision_dir.mkdir()
    tokenizer = tiny_tokenizer(LLAMA_SPECIAL, None, '</s>', None, vocab_size=300,
                               bos_token='<s>', unk_token='<unk>')
    tokenizer.save_pretrained(src)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=96,
                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                       max_position_embeddings=512, bos_token_id=1, eos_token_id=2)
    llama = LlamaForCausalLM(text).eval()
    vision_config = CLIPVisionConfig(hidden_size=MM_HIDDEN, intermediate_size=64,
                                     num_hidden_layers=2, num_attention_heads=2, image_size=56,
                                     patch_size=14)
    # Hub CLIP checkpoints keep the tower under vision_model.
    tower = {'vision_model.' + k: v.contiguous()
             for k, v in CLIPVisionModel(vision_config).state_dict().items()}
    save_file(tower, str(vision_dir / 'model.safetensors'))
    (vision_dir / 'config.json').write_text(json.dumps(vision_config.to_dict()))
    weights = dict(llama.state_dict())
    weights.update({'model.mm_projector.0.weight': torch.randn(48, MM_HIDDEN),
                    'model.mm_projector.0.bias': torch.randn(48),
                    'model.mm_projector.2.weight': torch.randn(48, 48),
                    'model.mm_projector.2.bias': torch.randn(48)})
    if tower_inside:
        # A tuned tower saved with the model differs from the hub one: the saved one wins.
        weights.update({'model.vision_tower.vision_tower.' + k: v + 1.0
                        for k, v in tower.items()})
    torch.save(weights, src / 'pytorch_model-00001-of-00001.bin')
    config = {**text.to_dict(), 'architectures': ['LlavaLlamaForCausalLM'],
              'model_type': 'llava_llama', 'mm_vision_tower': 'clip-tiny',
              'mm_hidden_size': MM_HIDDEN, 'mm_projector_type': 'mlp2x_gelu',
              'mm_vision_select_layer': -2, 'mm_vision_select_feature': 'patch',
              'image_aspect_ratio': 'pad', 'mm_use_im_start_end': False,
              'mm_use_im_patch_token': False, 'tune_mm_mlp_adapter': False}
    (src / 'config.json').write_text(json.dumps(config))
    return src, vision_dir, llama, tower, weights


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp('convert')
    src, vision_dir, llama, tower, weights = _fabricate(root, tower_inside=False)
    out = root / 'robopoint-tiny-hf'
    main(['--src', str(src), '--out', str(out), '--vision-tower', str(vision_dir)])
    return out, llama, tower, weights


def test_weights_round_trip(converted):
    out, llama, tower, weights = converted
    model = AutoModelForImageTextToText.from_pretrained(out)
    state = model.state_dict()
    assert torch.equal(state['model.multi_modal_projector.linear_1.weight'],
                       weights['model.mm_projector.0.weight'])
    assert torch.equal(state['model.multi_modal_projector.linear_2.bias'],
                       weights['model.mm_projector.2.bias'])
    assert torch.equal(state['model.language_model.layers.1.mlp.down_proj.weight'],
                       weights['model.layers.1.mlp.down_proj.weight'])
    assert torch.equal(state['model.vision_tower.encoder.layers.0.self_attn.q_proj.weight'],
                       tower['vision_model.encoder.layers.0.self_attn.q_proj.weight'])
    vocab = weights['lm_head.weight'].shape[0]
    assert torch.equal(state['lm_head.weight'][:vocab], weights['lm_head.weight'])
    ids = torch.tensor([[1, 40, 41, 42, 43]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[..., :vocab]
        np.testing.assert_allclose(logits.numpy(), llama(input_ids=ids).logits.numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_loads_with_auto_classes_and_generates(converted):
    out = converted[0]
    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert model.config.vision_feature_layer == -2 and processor.image_processor.do_pad
    chat = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Where?'}]}]
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert text.endswith('USER: <image>\nWhere? ASSISTANT:')
    inputs = processor(images=[Image.fromarray(noise_image(40, 90))], text=[text],
                       return_tensors='pt')
    image_id = model.config.image_token_id
    assert int((inputs['input_ids'] == image_id).sum()) == (56 // 14) ** 2
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape[1] == inputs['input_ids'].shape[1] + 4


def test_runs_through_the_backend_with_the_robopoint_profile(converted):
    out = converted[0]
    assert detect_profile(str(out))[0] == 'robopoint'
    with make_backend('transformers', model=str(out), device='cpu', max_new_tokens=5) as backend:
        generation = backend.generate(noise_image(), 'Put the mug left of the bowl.')
    assert 0 < generation.num_tokens <= 5 and generation.model_id == out.name


def test_tower_inside_the_checkpoint_and_missing_tower(tmp_path):
    src, vision_dir, _, tower, _ = _fabricate(tmp_path, tower_inside=True)
    out = convert(src, tmp_path / 'out', vision_dir)
    state = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    assert torch.equal(state['model.vision_tower.post_layernorm.weight'],
                       tower['vision_model.post_layernorm.weight'] + 1.0)
    config = json.loads((src / 'config.json').read_text())
    (src / 'config.json').write_text(json.dumps({**config, 'mm_projector_type': 'linear'}))
    with pytest.raises(ValueError, match='mlp2x_gelu'):
        convert(src, tmp_path / 'linear', vision_dir)


def test_checkpoint_without_tower_needs_one(tmp_path):
    from trace_train.convert import convert_keys
    with pytest.raises(ValueError, match='--vision-tower'):
        convert_keys({'model.norm.weight': torch.ones(2)})
    with pytest.raises(KeyError, match='unexpected key'):
        convert_keys({'vision_resampler.weight': torch.ones(2)})
