"""
The attention a reply's tokens paid to the image, for ``TransformersBackend.attention_maps``.

Where a prompt's image tokens sit (``image_grid``: LLaVA and Qwen2-VL / Qwen2.5-VL) and one
teacher-forced forward pass with eager attention (``reply_attention``) over prompt + reply.
"""

from typing import Sequence

import numpy as np
import torch
from trace_ros.backends.base import BackendError

QWEN_VL_TYPES = ('qwen2_vl', 'qwen2_5_vl')


def image_grid(config, inputs) -> tuple[tuple[int, int], torch.Tensor]:
    """
    Return the (rows, cols) grid of the prompt's image tokens and their positions, row-major.

    LLaVA: a square of (image_size / patch_size)^2 patch tokens (a CLS token, which the 'full'
    feature strategy keeps, is dropped); Qwen2-VL and Qwen2.5-VL: ``image_grid_thw`` divided by
    the spatial merge size. Other architectures raise ``BackendError`` naming the model type.
    """
    if config.model_type not in ('llava',) + QWEN_VL_TYPES:
        raise BackendError(f'attention maps support LLaVA and Qwen2-VL / Qwen2.5-VL models, not '
                           f'model type {config.model_type!r}')
    positions = (inputs['input_ids'][0] == config.image_token_id).nonzero()[:, 0]
    if config.model_type == 'llava':
        side = config.vision_config.image_size // config.vision_config.patch_size
        grid = (side, side)
        positions = positions[max(0, len(positions) - side * side):]
    else:
        _, height, width = inputs['image_grid_thw'][0].tolist()
        merge = config.vision_config.spatial_merge_size
        grid = (height // merge, width // merge)
    if len(positions) != grid[0] * grid[1]:
        raise BackendError(f'{len(positions)} image tokens in the prompt; a {grid[0]}x{grid[1]} '
                           'grid needs one image')
    return grid, positions


def _attn_implementations(config) -> dict:
    """Attention implementation of the model and of each of its sub-models, to restore them."""
    names = [name for name in getattr(config, 'sub_configs', {}) if getattr(config, name, None)]
    return {'': config._attn_implementation,
            **{name: getattr(config, name)._attn_implementation for name in names}}


def reply_attention(model, inputs, reply_ids: Sequence[int],
                    image_positions: torch.Tensor, layers: Sequence[int]) -> np.ndarray:
    """
    Return the attention (layers, heads, reply tokens, image tokens) each reply token got.

    One teacher-forced forward pass over the prompt ``inputs`` + ``reply_ids`` with eager
    attention; token i's row is that of the position predicting it (the one before it).
    """
    prompt_len = inputs['input_ids'].shape[1]
    reply = torch.tensor([list(reply_ids)], dtype=inputs['input_ids'].dtype,
                         device=inputs['input_ids'].device)
    full = dict(inputs)
    for key, value in inputs.items():
        if key == 'input_ids':
            full[key] = torch.cat([value, reply], 1)
        elif key == 'attention_mask' or key.endswith('token_type_ids'):
            fill = torch.ones_like(reply) if key == 'attention_mask' else torch.zeros_like(reply)
            full[key] = torch.cat([value, fill.to(value.dtype)], 1)
    previous = _attn_implementations(model.config)
    model.set_attn_implementation('eager')
    try:
        with torch.inference_mode():
            attentions = model(**full, output_attentions=True, use_cache=False).attentions
    finally:
        model.set_attn_implementation(previous)
    rows = torch.arange(prompt_len - 1, prompt_len - 1 + len(reply_ids), device=reply.device)
    columns = image_positions.to(reply.device)
    return np.stack([attentions[layer][0][:, rows][:, :, columns].float().cpu().numpy()
                     for layer in layers])


def token_offsets(tokenizer, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """Decode ``ids``; return the text and each token's (start, end) characters in it."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    ends = [len(tokenizer.decode(ids[:i + 1], skip_special_tokens=True)) for i in range(len(ids))]
    # A token ending inside a multi-byte character decodes with a replacement character.
    ends = np.minimum.accumulate(np.minimum(ends, len(text))[::-1])[::-1].tolist() if ids else []
    return text, list(zip([0] + ends[:-1], ends))


def layer_indices(layers: Sequence[int] | None, count: int) -> tuple[int, ...]:
    """Validate decoder layer indices (negative ones count from the end); None is all."""
    if layers is None:
        return tuple(range(count))
    if not layers or any(not -count <= layer < count for layer in layers):
        raise ValueError(f'layers must be non-empty indices of the {count} decoder layers, '
                         f'got {list(layers)}')
    return tuple(layer % count for layer in layers)
