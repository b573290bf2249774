r"""
Convert an original-repository LLaVA-1.5 checkpoint (RoboPoint, TRACE) to the transformers layout.

The original layout (haotian-liu/LLaVA, ``LlavaLlamaForCausalLM``) holds a Llama decoder under
``model.*`` and ``lm_head``, the two-layer projector (``mm_projector_type: mlp2x_gelu``) as
``model.mm_projector.0`` / ``.2``, and the CLIP tower under
``model.vision_tower.vision_tower.vision_model.*`` only when it was saved; otherwise it is the
hub CLIP model named by ``mm_vision_tower``, given here as ``--vision-tower DIR``. The output is
a stock ``LlavaForConditionalGeneration`` with an ``<image>`` token added to the tokenizer (its
embedding row the mean of the others), a PIL-only image processor that pads to a square in the
mean colour (``image_aspect_ratio: pad``) and the Vicuna-v1 chat template, so that it loads
with ``AutoModelForImageTextToText`` / ``AutoProcessor`` and trace_node's transformers backend.

    python -m trace_train.convert --src robopoint-v1-vicuna-v1.5-13b --out robopoint-13b-hf \\
        --vision-tower clip-vit-large-patch14-336
"""

import argparse
import json
import pathlib
from typing import Dict, Optional

import torch

IMAGE_TOKEN = '<image>'
# A CLIP tower's parts: CLIPModel keeps them under vision_model., CLIPVisionModel (5.x) at the top.
_TOWER_PARTS = ('embeddings.', 'pre_layrnorm.', 'encoder.', 'post_layernorm.')
VISION_PREFIX = 'model.vision_tower.vision_tower.'
PROJECTOR = {'model.mm_projector.0.': 'model.multi_modal_projector.linear_1.',
             'model.mm_projector.2.': 'model.multi_modal_projector.linear_2.'}
_MM_FIELDS = ('mm_vision_tower', 'mm_hidden_size', 'mm_projector_type', 'mm_vision_select_layer',
              'mm_vision_select_feature', 'mm_use_im_start_end', 'mm_use_im_patch_token',
              'mm_patch_merge_type', 'image_aspect_ratio', 'tune_mm_mlp_adapter',
              'freeze_mm_mlp_adapter', 'mm_projector_lr', 'mm_vision_tower_lr',
              'image_grid_pinpoints', 'tokenizer_model_max_length', 'tokenizer_padding_side',
              'use_mm_proj', 'unfreeze_mm_vision_tower', 'architectures', 'model_type')
# Vicuna v1 (LLaVA's conv_vicuna_v1) with typed content parts; an image part is <image>\n.
VICUNA_TEMPLATE = (
    '{{ bos_token }}A chat between a curious human and an artificial intelligence assistant. '
    "The assistant gives helpful, detailed, and polite answers to the human's questions. "
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    '{% else %}ASSISTANT: {% endif %}'
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}{{ eos_token }}{% endif %}{% endfor %}"
    '{% if add_generation_prompt %}ASSISTANT:{% endif %}')


def load_state_dict(directory: pathlib.Path) -> Dict[str, torch.Tensor]:
    """Read every safetensors or pytorch_model*.bin shard of a checkpoint directory."""
    tensors = {}
    shards = sorted(directory.glob('*.safetensors'))
    if shards:
        from safetensors.torch import load_file
        for shard in shards:
            tensors.update(load_file(str(shard)))
    for shard in ([] if shards else sorted(directory.glob('pytorch_model*.bin'))):
        tensors.update(torch.load(shard, map_location='cpu', weights_only=True))
    if not tensors:
        raise FileNotFoundError(f'no *.safetensors or pytorch_model*.bin weights in {directory}')
    return tensors


def convert_keys(original: Dict[str, torch.Tensor],
                 vision: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """Map original LLaVA keys (and a CLIP checkpoint's ``vision_model.*``) to transformers'."""
    converted = {}
    for key, value in original.items():
        if key.startswith(VISION_PREFIX + 'vision_model.'):
            converted['model.vision_tower.' + key[len(VISION_PREFIX + 'vision_model.'):]] = value
        elif any(key.startswith(old) for old in PROJECTOR):
            old = next(old for old in PROJECTOR if key.startswith(old))
            converted[PROJECTOR[old] + key[len(old):]] = value
        elif key.startswith('model.'):
            converted['model.language_model.' + key[len('model.'):]] = value
        elif key.startswith('lm_head.'):
            converted[key] = value
        else:
            raise KeyError(f'unexpected key in the LLaVA checkpoint: {key}')
    has_tower = any(k.startswith('model.vision_tower.') for k in converted)
    if not has_tower:
        if vision is None:
            raise ValueError('the checkpoint holds no vision tower: pass --vision-tower DIR '
                             '(the CLIP model its mm_vision_tower names)')
        for key, value in vision.items():
            key = key[len('vision_model.'):] if key.startswith('vision_model.') else key
            if key.startswith(_TOWER_PARTS):
                converted['model.vision_tower.' + key] = value
    return converted


def _vision_config(vision_dir: Optional[pathlib.Path]):
    """Return the CLIPVisionConfig of a CLIP (or CLIP vision) checkpoint's config.json."""
    from transformers import CLIPVisionConfig
    if vision_dir is None:
        raise ValueError('--vision-tower DIR is needed for the CLIP vision config')
    config = json.loads((vision_dir / 'config.json').read_text())
    fields = config.get('vision_config', config)
    fields = {k: v for k, v in fields.items() if k not in ('model_type', 'architectures')}
    return CLIPVisionConfig(**fields)


def _strategy(src_config: dict) -> str:
    """Return transformers' vision_feature_select_strategy for LLaVA's mm_vision_select_feature."""
    return 'full' if src_config.get('mm_vision_select_feature') == 'cls_patch' else 'default'


def build_config(src_config: dict, vision_config, image_token_id: int, vocab_size: int):
    """Return the LlavaConfig of an original LLaVA config.json (Llama text + CLIP vision)."""
    from transformers import LlamaConfig, LlavaConfig
    if src_config.get('mm_projector_type', 'mlp2x_gelu') != 'mlp2x_gelu':
        raise ValueError(f"mm_projector_type {src_config['mm_projector_type']!r}: only "
                         'mlp2x_gelu (LLaVA-1.5) converts to LlavaForConditionalGeneration')
    text = {k: v for k, v in src_config.items() if k not in _MM_FIELDS and not k.startswith('_')}
    text['vocab_size'] = vocab_size
    strategy = _strategy(src_config)
    side = vision_config.image_size // vision_config.patch_size
    return LlavaConfig(
        vision_config=vision_config, text_config=LlamaConfig(**text),
        image_token_id=image_token_id, projector_hidden_act='gelu',
        vision_feature_layer=src_config.get('mm_vision_select_layer', -2),
        vision_feature_select_strategy=strategy, image_seq_length=side * side,
        multimodal_projector_bias=True, tie_word_embeddings=False)


def build_processor(src: pathlib.Path, vision_dir: Optional[pathlib.Path], vision_config,
                    pad: bool, strategy: str = 'default'):
    """Return a LlavaProcessor: the tokenizer plus ``<image>``, a PIL CLIP processor, Vicuna v1."""
    from transformers import AutoTokenizer, LlavaImageProcessorPil, LlavaProcessor
    tokenizer = AutoTokenizer.from_pretrained(str(src))
    tokenizer.add_special_tokens({'additional_special_tokens': [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    side = vision_config.image_size
    settings = {'size': {'shortest_edge': side}, 'crop_size': {'height': side, 'width': side}}
    config_path = (vision_dir or src) / 'preprocessor_config.json'
    if config_path.is_file():
        saved = json.loads(config_path.read_text())
        settings.update({k: saved[k] for k in ('image_mean', 'image_std', 'size', 'crop_size')
                         if k in saved})
    image_processor = LlavaImageProcessorPil(do_pad=pad, **settings)
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                          patch_size=vision_config.patch_size, chat_template=VICUNA_TEMPLATE,
                          vision_feature_select_strategy=strategy,
                          num_additional_image_tokens=1, image_token=IMAGE_TOKEN)


def convert(src: pathlib.Path, out: pathlib.Path,
            vision_dir: Optional[pathlib.Path] = None) -> pathlib.Path:
    """Convert ``src`` (original LLaVA layout) into ``out`` (transformers layout)."""
    from transformers import LlavaForConditionalGeneration
    src_config = json.loads((src / 'config.json').read_text())
    vision_config = _vision_config(vision_dir)
    processor = build_processor(src, vision_dir, vision_config,
                                pad=src_config.get('image_aspect_ratio', 'pad') == 'pad',
                                strategy=_strategy(src_config))
    tokenizer = processor.tokenizer
    vision = load_state_dict(vision_dir) if vision_dir is not None else None
    weights = convert_keys(load_state_dict(src), vision)
    vocab_size = weights['model.language_model.embed_tokens.weight'].shape[0]
    new_vocab = max(len(tokenizer), vocab_size)
    for key in ('model.language_model.embed_tokens.weight', 'lm_head.weight'):
        old = weights[key]
        if old.shape[0] < new_vocab:
            mean = old.float().mean(0, keepdim=True).to(old.dtype)
            weights[key] = torch.cat([old, mean.expand(new_vocab - old.shape[0], -1)])
    config = build_config(src_config, vision_config,
                          tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), new_vocab)
    config.text_config.pad_token_id = tokenizer.pad_token_id
    with torch.device('meta'):
        model = LlavaForConditionalGeneration(config)
    model.load_state_dict(weights, strict=True, assign=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    return out


def main(argv=None) -> None:
    """Command line: ``python -m trace_train.convert --src DIR --out DIR [--vision-tower DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip())
    parser.add_argument('--src', required=True, type=pathlib.Path,
                        help='original LLaVA-layout checkpoint (RoboPoint / TRACE)')
    parser.add_argument('--out', required=True, type=pathlib.Path, help='output directory')
    parser.add_argument('--vision-tower', type=pathlib.Path, default=None,
                        help='local copy of the CLIP model named by mm_vision_tower')
    args = parser.parse_args(argv)
    print(convert(args.src, args.out, args.vision_tower))


if __name__ == '__main__':
    main()
