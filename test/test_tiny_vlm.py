"""The tiny VLM builder: a stock LLaVA checkpoint that reloads through the Auto classes."""

from PIL import Image
import pytest
from tiny_model import noise_image, tiny_model_dir
import torch
from trace_train.model.tiny_vlm import count_parameters, main, TinyVlmConfig
from transformers import AutoModelForImageTextToText, AutoProcessor


@pytest.fixture(scope='module')
def reloaded():
    model_dir = tiny_model_dir()
    return (AutoProcessor.from_pretrained(model_dir),
            AutoModelForImageTextToText.from_pretrained(model_dir))


def test_reloads_with_stock_auto_classes(reloaded):
    processor, model = reloaded
    assert type(processor).__name__ == 'LlavaProcessor'
    assert type(model).__name__ == 'LlavaForConditionalGeneration'
    assert model.config.vision_config.model_type == 'clip_vision_model'
    assert model.config.text_config.model_type == 'qwen2'
    assert 1e6 < count_parameters(model) < 10e6
    sizes, vision, text = TinyVlmConfig(), model.config.vision_config, model.config.text_config
    assert (vision.image_size, vision.patch_size, vision.hidden_size) == (
        sizes.image_size, sizes.patch_size, sizes.vision_hidden_size)
    assert (text.hidden_size, text.num_hidden_layers) == (
        sizes.text_hidden_size, sizes.text_layers)


def test_tokenizer_splits_digits_and_keeps_special_tokens(reloaded):
    tokenizer = reloaded[0].tokenizer
    digits = ['(', '0', '.', '4', '2', ',', 'Ġ', '0', '.', '5', '5', ')']
    assert tokenizer.tokenize('(0.42, 0.55)') == digits
    assert tokenizer.tokenize('<image>') == ['<image>']
    assert tokenizer.decode(tokenizer.encode('Ünïcode → ok 7')) == 'Ünïcode → ok 7'


def test_processor_expands_the_image_and_the_model_generates(reloaded):
    processor, model = reloaded
    config = TinyVlmConfig()
    messages = [{'role': 'user', 'content': [{'type': 'image'},
                                             {'type': 'text', 'text': 'Place the cup.'}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith('<|im_start|>assistant\n')
    inputs = processor(images=[Image.fromarray(noise_image(48, 96))], text=[text],
                       return_tensors='pt')
    assert inputs['pixel_values'].shape == (1, 3, config.image_size, config.image_size)
    image_id = model.config.image_token_id
    assert int((inputs['input_ids'] == image_id).sum()) == config.num_image_tokens == 64
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert output.shape[1] == inputs['input_ids'].shape[1] + 5


def test_cli_builds_a_custom_size(tmp_path):
    texts = tmp_path / 'texts.txt'
    texts.write_text('left of the plate (0.1, 0.2)\nright of the cup\n')
    main(['--out', str(tmp_path / 'm'), '--texts', str(texts), '--image-size', '64',
          '--patch-size', '16', '--text-layers', '1', '--vision-layers', '1'])
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / 'm')
    assert model.config.vision_config.image_size == 64
    assert model.config.image_seq_length == 16
    assert model.config.text_config.num_hidden_layers == 1
