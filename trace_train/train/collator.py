"""
Encode (image, prompt, answer) samples with the processor's chat template into a batch.

Besides the labels (the reply only), a batch says where the answer's coordinate digits are
(``COORD_KEYS``, for the coordinate L1) and which positions and image tokens the attention
supervision pairs (``REFERENCE_KEYS``); ``trace_train.train.trainer`` pops both.
"""

from PIL import Image
import torch
from trace_ros.core.answer_format import (answer_coordinates, assistant_turn, grounded_point_spans,
                                          user_turn)

COORD_KEYS = ('coord_batch', 'coord_position', 'coord_place', 'coord_number', 'coord_target')
REFERENCE_KEYS = ('reference_batch', 'reference_position', 'reference_target')


def digit_token_ids(tokenizer) -> list[int] | None:
    """Return the token ids of '0'..'9', or None when a digit is not a single token."""
    ids = [tokenizer(str(d), add_special_tokens=False)['input_ids'] for d in range(10)]
    return [i[0] for i in ids] if all(len(i) == 1 for i in ids) else None


def answer_digits(reply: str, offsets: list) -> tuple[list, list]:
    """
    Locate the coordinate digits of the reply's final ``[...]`` list.

    Returns ``(token index in the reply, decimal place, number index)`` per digit after ``0.``
    and the numbers' values; numbers whose digits are not one token each are left out.
    """
    single = {start: i for i, (start, end) in enumerate(offsets) if end == start + 1}
    digits, values = [], []
    for (first, last), value in answer_coordinates(reply):
        starts = range(first, last)
        if all(s in single for s in starts):
            digits += [(single[s], place, len(values)) for place, s in enumerate(starts, 1)]
            values.append(value)
    return digits, values


def rgb_image(image) -> Image.Image:
    """Return ``image`` (a PIL image or a path) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    with Image.open(image) as opened:
        return opened.convert('RGB')


class ChatCollator:
    """
    Encode (image, prompt, answer) samples with the processor's chat template into a batch.

    Labels are -100 except on the assistant reply and its end-of-turn token; sequences are
    padded on the right. With a digit-per-token tokenizer the batch also says where the
    answer's coordinate digits are (``COORD_KEYS``) for the coordinate L1 loss.
    """

    def __init__(self, processor, reference_radius: float | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, 'tokenizer', processor)
        self.reference_radius = reference_radius
        self.image_id = getattr(processor, 'image_token_id', None)
        self.digit_ids = digit_token_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = self.tokenizer.eos_token_id if pad is None else pad

    def chat_texts(self, prompt: str, answer: str) -> tuple[str, str]:
        """Return the whole conversation and its assistant part (reply + end of turn)."""
        user, reply = user_turn(prompt), assistant_turn(answer)
        head = self.processor.apply_chat_template([user], add_generation_prompt=True,
                                                  tokenize=False)
        full = self.processor.apply_chat_template([user, reply], tokenize=False).rstrip()
        if not full.startswith(head) or answer not in full[len(head):]:
            raise ValueError('the chat template does not render the reply after the prompt')
        return full, full[len(head):]

    def encode(self, sample: dict) -> dict:
        """Encode one sample (image: PIL image or path): tensors, labels, coordinate digits."""
        full, reply = self.chat_texts(sample['prompt'], sample['answer'])
        encoded = dict(self.processor(images=[rgb_image(sample['image'])], text=[full],
                                      return_tensors='pt'))
        tail = self.tokenizer(reply, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded['input_ids']
        start = ids.shape[1] - len(tail['input_ids'])
        if ids[0, start:].tolist() != tail['input_ids']:
            raise ValueError('the reply tokenizes differently inside the conversation')
        encoded['labels'] = torch.where(torch.arange(ids.shape[1]) < start, -100, ids)
        digits, values = answer_digits(reply, tail['offset_mapping'])
        encoded['digits'] = [(start + i - 1, place, n) for i, place, n in digits]
        encoded['values'] = values
        if self.reference_radius is not None:
            encoded['reference'] = self.reference_targets(reply, tail['offset_mapping'], start,
                                                          ids[0])
        return encoded

    def reference_targets(self, reply: str, offsets: list, start: int, ids) -> list:
        """
        Return (position, image-token mask) for each token of the reply's supervised points.

        Those are the reference point's ``(x, y)`` and, where step 3 gives one, the target
        area's centre. Positions are those that predict the tokens; each mask marks the image
        tokens whose patch centres lie within ``reference_radius`` of its point (at least the
        point's own patch), on the square patch grid of processors that resize without cropping.
        """
        image = (ids == self.image_id).nonzero().squeeze(1) if self.image_id is not None else []
        grid = round(len(image) ** 0.5)
        if grid * grid != len(image) or grid == 0:
            return []
        centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        targets = []
        for (first, last), point in grounded_point_spans(reply):
            x, y = (min(max(value, 0.0), 1.0) for value in point)
            near = ((centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2).sqrt()
            near = near <= self.reference_radius
            near[min(int(y * grid), grid - 1), min(int(x * grid), grid - 1)] = True
            mask = torch.zeros(len(ids), dtype=torch.bool)
            mask[image[near.reshape(-1)]] = True
            targets += [(start + i - 1, mask) for i, (a, b) in enumerate(offsets)
                        if b > a and b > first and a < last]
        return targets

    def __call__(self, samples: list[dict]) -> dict:
        """Encode and pad ``samples``."""
        encoded = [self.encode(s) for s in samples]
        length = max(e['input_ids'].shape[1] for e in encoded)
        pad_values = {'input_ids': self.pad_id, 'labels': -100}
        batch = {}
        for key, first in encoded[0].items():
            if key in ('digits', 'values', 'reference'):
                continue
            if first.shape == encoded[0]['input_ids'].shape:  # one value per token
                batch[key] = torch.cat([torch.nn.functional.pad(
                    e[key], (0, length - e[key].shape[1]), value=pad_values.get(key, 0))
                    for e in encoded])
            else:
                batch[key] = torch.cat([e[key] for e in encoded])
        if self.digit_ids is not None:
            batch.update(self.coordinates(encoded))
        if self.reference_radius is not None:
            batch.update(self.references(encoded, length))
        return batch

    @staticmethod
    def references(encoded: list[dict], length: int) -> dict:
        """Flatten the reference-point targets of all samples into ``REFERENCE_KEYS`` tensors."""
        rows = [(index, position, mask) for index, sample in enumerate(encoded)
                for position, mask in sample['reference']]
        target = torch.zeros((len(rows), length), dtype=torch.bool)
        for row, (_, _, mask) in enumerate(rows):
            target[row, :len(mask)] = mask
        return {'reference_batch': torch.tensor([r[0] for r in rows], dtype=torch.long),
                'reference_position': torch.tensor([r[1] for r in rows], dtype=torch.long),
                'reference_target': target}

    @staticmethod
    def coordinates(encoded: list[dict]) -> dict:
        """Flatten the digits of all samples into ``COORD_KEYS`` tensors."""
        rows, numbers, values = [], 0, []
        for index, sample in enumerate(encoded):
            rows += [(index, pos, place, numbers + n) for pos, place, n in sample['digits']]
            numbers += len(sample['values'])
            values += sample['values']
        columns = torch.tensor(rows, dtype=torch.long).reshape(-1, 4).T
        return {**dict(zip(COORD_KEYS[:4], columns)),
                'coord_target': torch.tensor(values, dtype=torch.float32)}
