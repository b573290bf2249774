"""
Read the points of a model family's native reply into normalized image points.

VLM families write points in their own conventions; each becomes the pipeline's normalized
``(x, y)``, edge to edge, pixel centres at ``(u + 0.5) / width`` (docs/DEVELOPING.md):

* ``normalized``: floats in [0, 1] (TRACE, RoboPoint), read by ``trace_ros.core.parsing``;
* ``resized_pixels``: absolute pixels of the image the model saw after its processor resized
  it (Qwen2.5-VL, RoboBrain 2.0: sides are multiples of 28, see ``smart_resize``); integers
  are pixel centres, as in the parser;
* ``thousandths``: 0-1000 integers, x then y (Qwen3-VL);
* ``yx_thousandths``: 0-1000 integers, y then x (Gemini Robotics-ER's ``"point": [y, x]``);
* ``percent``: 0-100 percentages in ``<point x=".." y="..">`` / ``<points x1=".." y1=".." ...>``
  markup (Molmo).

Pairs are found in JSON ``"point_2d": [x, y]`` / ``"point": [..]`` fields, Molmo markup, or
else as bare ``(a, b)`` / ``[a, b]`` pairs, in the answer region: inside ``<answer>`` tags,
else after the last ``Answer:`` marker, else the reply without its ``<think>`` block.
"""

import math
import re
from typing import List, Optional, Sequence, Tuple

import numpy as np
from trace_ros.core.answer_format import LENIENT

CONVENTIONS = ('normalized', 'resized_pixels', 'thousandths', 'yx_thousandths', 'percent')
_SCALES = {'thousandths': 1000.0, 'yx_thousandths': 1000.0, 'percent': 100.0}
_NUM = r'[+-]?(?:\d+(?:\.\d*)?|\.\d+)'
_JSON_POINT_RE = re.compile(
    rf'"(?:point_2d|point)"\s*:\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*\]')
_MARKUP_RE = re.compile(rf'\bx(\d*)\s*=\s*"\s*({_NUM})\s*"\s+y\1\s*=\s*"\s*({_NUM})\s*"')
_PAIR_RE = re.compile(rf'[(\[]\s*({_NUM})\s*,\s*({_NUM})\s*[)\]]')
_THINK_RE = re.compile(r'<think>.*?(?:</think>|$)', re.DOTALL | re.IGNORECASE)
_ANSWER_TAG_RE = re.compile(r'<answer>(.*?)(?:</answer>|$)', re.DOTALL | re.IGNORECASE)


def smart_resize(width: int, height: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 14 * 14 * 4 * 1280) -> Tuple[int, int]:
    """
    Return the (width, height) a Qwen2-VL-family processor resizes an image to.

    Both sides become multiples of ``factor`` (patch size x merge size), the area stays within
    [min_pixels, max_pixels] and the aspect ratio as close as rounding allows.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def answer_region(text: str) -> Tuple[int, int]:
    """Return the (start, end) of the part of ``text`` that holds the answer (module doc)."""
    tag = None
    for tag in _ANSWER_TAG_RE.finditer(text):
        pass
    if tag is not None:
        return tag.span(1)
    markers = list(LENIENT['marker'].finditer(text))
    if markers:
        return markers[-1].end(), len(text)
    think = _THINK_RE.search(text)
    return (think.end() if think else 0), len(text)


def find_pairs(text: str, convention: str) -> List[Tuple[str, float, float]]:
    """Return (raw, a, b) of each written pair in ``text``, in the convention's own order."""
    pattern_groups = ((_MARKUP_RE, (2, 3)),) if convention == 'percent' else ()
    pattern_groups += ((_JSON_POINT_RE, (1, 2)), (_PAIR_RE, (1, 2)))
    for pattern, (a, b) in pattern_groups:
        found = [(m.group(0), float(m.group(a)), float(m.group(b)))
                 for m in pattern.finditer(text)]
        if found:
            return found
    return []


def to_normalized(pairs: Sequence[Tuple[str, float, float]], convention: str,
                  input_size: Optional[Tuple[int, int]] = None):
    """
    Convert pairs to normalized (x, y); return (points (N, 2), rejection reasons).

    ``input_size`` (width, height) is the model's resized input, needed by ``resized_pixels``.
    """
    if convention not in CONVENTIONS or convention == 'normalized':
        raise ValueError(f'convention must be one of {CONVENTIONS[1:]}, got {convention!r}')
    rows, errors = [], []
    for raw, a, b in pairs:
        x, y = (b, a) if convention == 'yx_thousandths' else (a, b)
        if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
            errors.append(f'{raw}: negative or not finite')
            continue
        if convention == 'resized_pixels':
            if input_size is None:
                errors.append(f'{raw}: pixels of the resized input need its size')
                continue
            width, height = input_size
            if x > width or y > height:
                errors.append(f'{raw}: outside the {width}x{height} model input')
                continue
            rows.append([min((x + 0.5) / width, 1.0), min((y + 0.5) / height, 1.0)])
        else:
            scale = _SCALES[convention]
            if x > scale or y > scale:
                errors.append(f'{raw}: above {scale:g}')
                continue
            rows.append([x / scale, y / scale])
    return np.array(rows, dtype=float).reshape(-1, 2), errors


def from_normalized(points, convention: str,
                    input_size: Optional[Tuple[int, int]] = None) -> List[Tuple[float, float]]:
    """Write normalized points as the (first, second) numbers of ``convention`` (for tests)."""
    out = []
    for x, y in np.asarray(points, dtype=float).reshape(-1, 2):
        if convention == 'resized_pixels':
            width, height = input_size
            out.append((round(x * width - 0.5), round(y * height - 0.5)))
        elif convention == 'normalized':
            out.append((round(x, 3), round(y, 3)))
        elif convention == 'percent':
            out.append((round(x * 100.0, 1), round(y * 100.0, 1)))
        else:
            first, second = (y, x) if convention == 'yx_thousandths' else (x, y)
            out.append((round(first * 1000.0), round(second * 1000.0)))
    return out
