"""
A tiny real LLaVA model trained to give known replies to known prompts (for node tests).

The node's geometry is checked against a model whose answer is known in advance: the
model is a stock transformers LLaVA built from a config and trained for a few seconds to
memorize (prompt -> reply) pairs, then loaded through the node's real backend.
"""

import pathlib
from typing import Dict

import numpy as np
from PIL import Image
import torch
from trace_ros.core.answer_format import assistant_turn, user_turn
from trace_train.model.tiny_vlm import build_tiny_vlm, TinyVlmConfig
from transformers import AutoModelForImageTextToText, AutoProcessor

# The node tests' instructions and the replies the memorized model gives them: GOOD's is
# grammatical (structured decoding leaves it unchanged), NONSENSE's is not.
GOOD = 'put the mug on the free space'
NONSENSE = 'tell me a story'
REPLIES = {
    GOOD: ('1. Goal subtype: free space.\n2. Reference: the table, at (0.500, 0.500).\n'
           '3. Target area: the empty left part of the table, x 0.15-0.35, y 0.40-0.60.\n'
           '4. Coordinates: three points.\n'
           'Answer: [(0.250, 0.500), (0.300, 0.550), (0.200, 0.450)]'),
    NONSENSE: 'I do not know where that is.',
}

SMALL = TinyVlmConfig(image_size=56, patch_size=28, vision_hidden_size=64, vision_layers=1,
                      vision_heads=2, vision_intermediate_size=128, text_hidden_size=128,
                      text_layers=2, text_heads=2, text_kv_heads=1, text_intermediate_size=256,
                      vocab_size=600)


def _chat(processor, prompt: str, reply: str = None):
    user = user_turn(prompt)
    if reply is None:
        return processor.apply_chat_template([user], add_generation_prompt=True, tokenize=False)
    return processor.apply_chat_template([user, assistant_turn(reply)], tokenize=False).rstrip()


def build_memorized_model(out_dir: pathlib.Path, replies: Dict[str, str],
                          max_steps: int = 400) -> pathlib.Path:
    """Build and train a tiny VLM until greedy decoding reproduces every reply."""
    build_tiny_vlm(out_dir, list(replies) + list(replies.values()), SMALL)
    processor = AutoProcessor.from_pretrained(out_dir)
    model = AutoModelForImageTextToText.from_pretrained(out_dir)
    rng = np.random.default_rng(0)
    batches = []
    for prompt, reply in replies.items():
        full = processor(images=_image(rng), text=_chat(processor, prompt, reply),
                         return_tensors='pt')
        prefix = processor(images=_image(rng), text=_chat(processor, prompt),
                           return_tensors='pt')
        labels = full['input_ids'].clone()
        labels[:, :prefix['input_ids'].shape[1]] = -100
        batches.append((full, labels, prefix, reply))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for step in range(max_steps):
        model.train()
        for full, labels, _, _ in batches:
            # A new random image every step: the reply must not depend on the image.
            pixels = processor.image_processor(_image(rng), return_tensors='pt')['pixel_values']
            loss = model(**{**full, 'pixel_values': pixels}, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        if step % 25 == 24 and _reproduces(model, processor, batches, rng):
            break
    else:
        raise RuntimeError('the tiny model did not memorize its replies')
    model.save_pretrained(out_dir)
    return out_dir


def _image(rng) -> Image.Image:
    """Draw a random image of random size (noise, flat colour or stripes)."""
    height, width = rng.integers(32, 480, size=2)
    kind = rng.integers(3)
    if kind == 0:
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif kind == 1:
        array = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (height, width, 3))
    else:
        array = np.zeros((height, width, 3), np.uint8)
        array[::4] = rng.integers(0, 256, 3, dtype=np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _reproduces(model, processor, batches, rng) -> bool:
    model.eval()
    with torch.no_grad():
        for _, _, prefix, reply in batches:
            pixels = processor.image_processor(_image(rng), return_tensors='pt')['pixel_values']
            prefix = {**prefix, 'pixel_values': pixels}
            out = model.generate(**prefix, max_new_tokens=len(reply) + 8, do_sample=False)
            text = processor.decode(out[0, prefix['input_ids'].shape[1]:],
                                    skip_special_tokens=True)
            if text.strip() != reply:
                return False
    return True
