"""
Tiny random VLMs of the families trace_node profiles, saved in their real hub layouts.

Each is a stock transformers architecture built from a config (a few hundred thousand
parameters) with a tiny BPE tokenizer holding the family's special tokens and chat template,
saved as the hub checkpoints are: Qwen2.5-VL and Qwen3-VL with ``preprocessor_config.json``
naming the torchvision image processor (as the real ones do), LLaVA with a Llama decoder and a
CLIP tower (the RoboPoint/TRACE layout after conversion).
"""

import json
import pathlib

from tokenizers import decoders, models, pre_tokenizers, Regex, Tokenizer, trainers
import torch
from trace_train.model.tiny_vlm import _SPLIT_REGEX
from transformers import PreTrainedTokenizerFast

QWEN_SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>',
                '<|vision_end|>', '<|image_pad|>', '<|video_pad|>']
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    '<|vision_start|><|image_pad|><|vision_end|>'
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    '<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}')
TEXTS = ['Put the mug left of the bowl. Point to where the item should go.',
         '[{"point_2d": [120, 80], "label": "placement"}] (0.25, 0.50) <point x="61.5" y="40.4">']
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]


def tiny_tokenizer(special, template, eos, pad, vocab_size=400, **extra):
    """Train a byte-level BPE tokenizer on TEXTS with ``special`` tokens first."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT_REGEX), behavior='isolated'),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(TEXTS, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos, pad_token=pad,
                                   chat_template=template, **extra)


def _save_qwen(model, tokenizer, out: pathlib.Path, processor_class: str, patch: int,
               max_pixels: int) -> pathlib.Path:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    model.generation_config.eos_token_id = ids['<|im_end|>']
    model.generation_config.pad_token_id = ids['<|endoftext|>']
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / 'preprocessor_config.json').write_text(json.dumps({
        'image_processor_type': 'Qwen2VLImageProcessor', 'processor_class': processor_class,
        'min_pixels': 4 * patch * patch, 'max_pixels': max_pixels, 'patch_size': patch,
        'temporal_patch_size': 2, 'merge_size': 2, 'image_mean': IMAGE_MEAN,
        'image_std': IMAGE_STD}))
    (out / 'chat_template.json').write_text(json.dumps({'chat_template': QWEN_TEMPLATE}))
    return out


def _qwen_ids(tokenizer) -> dict:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    return {'image_token_id': ids['<|image_pad|>'], 'video_token_id': ids['<|video_pad|>'],
            'vision_start_token_id': ids['<|vision_start|>'],
            'vision_end_token_id': ids['<|vision_end|>']}


def _text(tokenizer, **extra) -> dict:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    return {'vocab_size': len(tokenizer), 'hidden_size': 64, 'intermediate_size': 128,
            'num_hidden_layers': 2, 'num_attention_heads': 2, 'num_key_value_heads': 1,
            'max_position_embeddings': 1024, 'bos_token_id': ids['<|im_start|>'],
            'eos_token_id': ids['<|im_end|>'], 'pad_token_id': ids['<|endoftext|>'], **extra}


def build_qwen2_5_vl(out: pathlib.Path, max_pixels: int = 56 * 56 * 4) -> pathlib.Path:
    """Build a tiny Qwen2.5-VL (patch 14, merge 2: 28-pixel grid) in the hub layout."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    tokenizer = tiny_tokenizer(QWEN_SPECIAL, QWEN_TEMPLATE, '<|im_end|>', '<|endoftext|>')
    rope = {'rope_type': 'default', 'rope_theta': 10000.0, 'mrope_section': [4, 6, 6]}
    config = Qwen2_5_VLConfig(
        text_config=_text(tokenizer, rope_parameters=rope),
        vision_config={'depth': 1, 'hidden_size': 32, 'intermediate_size': 64, 'num_heads': 2,
                       'out_hidden_size': 64, 'patch_size': 14, 'spatial_merge_size': 2,
                       'temporal_patch_size': 2, 'window_size': 56,
                       'fullatt_block_indexes': [0]},
        **_qwen_ids(tokenizer))
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config)
    return _save_qwen(model, tokenizer, out, 'Qwen2_5_VLProcessor', 14, max_pixels)


def build_qwen3_vl(out: pathlib.Path, max_pixels: int = 64 * 64 * 4) -> pathlib.Path:
    """Build a tiny Qwen3-VL (patch 16, merge 2: 32-pixel grid) in the hub layout."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration
    tokenizer = tiny_tokenizer(QWEN_SPECIAL, QWEN_TEMPLATE, '<|im_end|>', '<|endoftext|>')
    rope = {'rope_type': 'default', 'rope_theta': 10000.0, 'mrope_section': [4, 6, 6],
            'mrope_interleaved': True}
    config = Qwen3VLConfig(
        text_config=_text(tokenizer, head_dim=32, rope_parameters=rope),
        vision_config={'depth': 2, 'hidden_size': 32, 'intermediate_size': 64, 'num_heads': 2,
                       'out_hidden_size': 64, 'patch_size': 16, 'spatial_merge_size': 2,
                       'temporal_patch_size': 2, 'num_position_embeddings': 64,
                       'deepstack_visual_indexes': [0]},
        **_qwen_ids(tokenizer))
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config)
    return _save_qwen(model, tokenizer, out, 'Qwen3VLProcessor', 16, max_pixels)
