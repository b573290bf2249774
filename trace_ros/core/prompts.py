"""
Prompts for TRACE (chain of reasoning) and RoboPoint (points only) answers, and the writer.

The canonical chain-of-reasoning (CoR) answer, written by ``format_cor_answer`` for the
dataset and read back by ``trace_ros.core.parsing.parse_answer``::

    1. Goal subtype: object reference.
    2. Reference: the red mug, at (0.420, 0.550).
    3. Target area: the free table surface left of the red mug, x 0.20-0.38, y 0.50-0.62.
    4. Coordinates: points sampled inside the target area.
    Answer: [(0.310, 0.560), (0.290, 0.600)]

One step per line, each ending with a period; the points follow the last ``Answer:`` marker
as normalized ``(x, y)`` tuples (0..1 edge to edge, see docs/DEVELOPING.md), written with a
fixed number of decimals. Tuples in the steps are reasoning, never answer points.
"""

import re
from typing import Optional, Sequence

import numpy as np

ANSWER_MARKER = 'Answer:'
GOAL_OBJECT_REFERENCE = 'object reference'
GOAL_FREE_SPACE = 'free space'
GOAL_SUBTYPES = (GOAL_OBJECT_REFERENCE, GOAL_FREE_SPACE)
STEP_LABELS = ('Goal subtype', 'Reference', 'Target area', 'Coordinates')
DEFAULT_COORDINATES_STEP = 'points sampled inside the target area'
AREA_DECIMALS = 2

ROBOPOINT_SUFFIX = (
    'Your answer should be formatted as a list of tuples, i.e. [(x1, y1), (x2, y2), ...], '
    'where each tuple contains the x and y coordinates of a point satisfying the conditions '
    'above. The coordinates should be between 0 and 1, indicating the normalized pixel '
    'locations of the points in the image.')

COR_SUFFIX = (
    'Reason step by step, then answer, in exactly this format:\n'
    '1. Goal subtype: object reference or free space.\n'
    '2. Reference: the reference object or surface, at (x, y).\n'
    '3. Target area: where the item should go, x x0-x1, y y0-y1.\n'
    '4. Coordinates: how the points are chosen inside the target area.\n'
    'Answer: [(x1, y1), (x2, y2), ...]\n'
    'All coordinates are between 0 and 1, normalized to the image width and height.')

PROMPT_STYLES = ('cor', 'plain')

_SUFFIX_RE = re.compile(r'\s*your answer should be formatted\b', re.IGNORECASE)
_MARKER_RE = re.compile(r'(?<![a-z])answer[\s*_]*:', re.IGNORECASE)


def strip_format_suffix(question: str) -> str:
    """Drop a RoboPoint answer-format suffix ("Your answer should be formatted ...")."""
    match = _SUFFIX_RE.search(question)
    return (question[:match.start()] if match else question).strip()


def build_prompt(instruction: str, style: str = 'cor') -> str:
    """
    Prompt for one placement instruction: ``cor`` (TRACE steps) or ``plain`` (RoboPoint).

    An answer-format suffix already in the instruction (Where2Place questions carry
    RoboPoint's) is replaced, and a final period added, so both styles ask the same question.
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f'unknown prompt style {style!r}; expected one of {PROMPT_STYLES}')
    question = strip_format_suffix(instruction)
    if not question:
        raise ValueError('empty instruction')
    if question[-1] not in '.?!':
        question += '.'
    suffix = COR_SUFFIX if style == 'cor' else ROBOPOINT_SUFFIX
    return f'{question} {suffix}'


def _checked_points(points, what: str) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim == 1 and array.size == 2:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f'{what} must be (N, 2) normalized points, got shape {array.shape}')
    if not np.all(np.isfinite(array)) or np.any((array < 0.0) | (array > 1.0)):
        raise ValueError(f'{what} must be finite and within [0, 1]')
    return array


def _number(value: float, decimals: int) -> str:
    return f'{value + 0.0:.{decimals}f}'  # + 0.0 turns -0.0 into 0.0


def format_points(points, decimals: int = 3) -> str:
    """
    Write normalized points as ``[(x1, y1), (x2, y2)]`` with ``decimals`` decimals each.

    ``decimals`` >= 1 keeps a decimal point in every value, which is what tells the parser
    the tuple is normalized rather than integer pixels.
    """
    if decimals < 1:
        raise ValueError('decimals must be >= 1 (integers would read as pixel coordinates)')
    array = _checked_points(points, 'points')
    if len(array) == 0:
        raise ValueError('at least one point is needed')
    return '[' + ', '.join(f'({_number(x, decimals)}, {_number(y, decimals)})'
                           for x, y in array) + ']'


def _step_text(text: str, what: str) -> str:
    text = ' '.join(str(text).split()).rstrip('.').strip()
    if not text:
        raise ValueError(f'{what} is empty')
    if _MARKER_RE.search(text):
        raise ValueError(f'{what} must not contain an answer marker: {text!r}')
    return text


def format_cor_answer(goal_subtype: str, reference: str, target_area: str, points, *,
                      reference_point: Optional[Sequence[float]] = None,
                      target_box: Optional[Sequence[float]] = None,
                      target_centre: Optional[Sequence[float]] = None,
                      coordinates: str = DEFAULT_COORDINATES_STEP,
                      decimals: int = 3) -> str:
    """
    Write the canonical CoR answer (module docstring) for the dataset pipeline.

    ``reference_point`` (x, y) is appended to the reference as ``, at (x, y)``;
    ``target_box`` (x0, y0, x1, y1) to the target area as ``, x x0-x1, y y0-y1`` with
    AREA_DECIMALS decimals; ``target_centre`` (x, y), the area's most interior point, as
    ``, centred at (x, y)``. All coordinates are normalized; texts are collapsed to one line.
    """
    if goal_subtype not in GOAL_SUBTYPES:
        raise ValueError(f'goal subtype {goal_subtype!r} is not one of {GOAL_SUBTYPES}')
    reference = _step_text(reference, 'reference')
    target_area = _step_text(target_area, 'target area')
    coordinates = _step_text(coordinates, 'coordinates step')
    if reference_point is not None:
        (x, y), = _checked_points(reference_point, 'reference_point')
        reference += f', at ({_number(x, decimals)}, {_number(y, decimals)})'
    if target_box is not None:
        box = np.asarray(target_box, dtype=float)
        if box.shape != (4,):
            raise ValueError(f'target_box must be (x0, y0, x1, y1), got shape {box.shape}')
        x0, y0, x1, y1 = _checked_points(box.reshape(2, 2), 'target_box').ravel()
        if x1 < x0 or y1 < y0:
            raise ValueError(f'target_box {tuple(box)} has x1 < x0 or y1 < y0')
        d = AREA_DECIMALS
        target_area += (f', x {_number(x0, d)}-{_number(x1, d)}, '
                        f'y {_number(y0, d)}-{_number(y1, d)}')
    if target_centre is not None:
        (x, y), = _checked_points(target_centre, 'target_centre')
        target_area += f', centred at ({_number(x, decimals)}, {_number(y, decimals)})'
    steps = zip(STEP_LABELS, (goal_subtype, reference, target_area, coordinates))
    lines = [f'{i}. {label}: {text}.' for i, (label, text) in enumerate(steps, 1)]
    lines.append(f'{ANSWER_MARKER} {format_points(points, decimals)}')
    return '\n'.join(lines)
