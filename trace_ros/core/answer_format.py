"""
The TRACE answer format in one place: writer, readers, grammar and chat turns.

A chain-of-reasoning (CoR) reply, as ``format_cor_answer`` writes it::

    1. Goal subtype: object reference.
    2. Reference: the red mug, at (0.420, 0.550).
    3. Target area: the free table surface left of the red mug, x 0.20-0.38, y 0.50-0.62.
    4. Coordinates: points sampled inside the target area.
    Answer: [(0.310, 0.560), (0.290, 0.600)]

One step per line, each ending with a period. Step 2 names the reference with its point
(several are joined by `` and ``); step 3 gives the target area's box ``x x0-x1, y y0-y1``
(AREA_DECIMALS decimals) or its centre ``centred at (x, y)``. Points are normalized
``(x, y)`` (0..1 edge to edge, docs/DEVELOPING.md) with a fixed number of decimals; tuples in
the steps are reasoning, never answer points. A plain (RoboPoint) reply is the point list
alone. ``reply_regex`` is the grammar of both; ``LENIENT`` holds the patterns with which
``trace_ros.core.parsing`` reads any model's reply.
"""

import dataclasses
import functools
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ANSWER_MARKER = 'Answer:'
GOAL_OBJECT_REFERENCE = 'object reference'
GOAL_FREE_SPACE = 'free space'
GOAL_SUBTYPES = (GOAL_OBJECT_REFERENCE, GOAL_FREE_SPACE)
STEP_LABELS = ('Goal subtype', 'Reference', 'Target area', 'Coordinates')
DEFAULT_COORDINATES_STEP = 'points sampled inside the target area'
POINT_DECIMALS = 3
AREA_DECIMALS = 2
REFERENCE_AT = ', at '
REFERENCE_JOIN = ' and '
CENTRE_WORDS = 'centred at '
CENTRE_AT = ', ' + CENTRE_WORDS
LOCATE_START, LOCATE_AT = 'The ', ' is at '
IMAGE_TAG = '<image>\n'  # the image's place in a LLaVA-format human message
MAX_POINTS = 16
# Longest (printable ASCII) texts the grammar lets steps 2, 3 and 4 write; trace_train's
# writer stays under them (47, 155 and 57 characters). They bound a reply's tokens.
MAX_STEP_CHARS = (96, 200, 96)

# Lenient patterns for reading any model's reply (trace_ros.core.parsing).
_LENIENT_MARKER = r'(?<![a-z])answer[\s*_]*:'
LENIENT = {
    'marker': re.compile(_LENIENT_MARKER, re.IGNORECASE),
    'group': re.compile(r'[(\[]([^()\[\]]*)[)\]]'),
    'open': re.compile(r'[(\[][^()\[\]]*'),
    'opener': re.compile(r'[(\[]'),
    'digit': re.compile(r'\d'),
    'nested': re.compile(r'\s*\['),
    'closer': re.compile(r'\]'),
    'double_closer': re.compile(r'\]\s*\]'),
    'separator': re.compile(r'[\s,;]*(?:and\b[\s,;]*)?', re.IGNORECASE),
    'end': re.compile(r'[\s\])}>.,;:!?*`"\']*'),
    'only_tuples': re.compile(r'[\s0-9.,;()\[\]+\-eE\u2212]*'),
    'number': re.compile(r'[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?', re.ASCII),
    'non_finite': re.compile(r'[+-]?(?:nan|inf(?:inity)?)', re.IGNORECASE),
    'step': re.compile(
        r'^[ \t>#*_-]*(?:(?:step[ \t]*)?\d{1,2}[ \t]*[.):][ \t*_]*)?'
        r'(goal[ \t_-]*subtype|reference(?:[ \t]+(?:object|surface))?|target[ \t_-]*area'
        r'|coordinates)[ \t*_]*:(.*)$', re.IGNORECASE | re.MULTILINE),
}

_NUMBER = r'(\d*\.?\d+)'
_POINT = re.compile(r'\(\s*{0}\s*,\s*{0}\s*\)'.format(_NUMBER))
_BOX = re.compile(r'x {0}-{0}, y {0}-{0}'.format(_NUMBER))
_CENTRE = re.compile(CENTRE_WORDS + r'\({0}, {0}\)'.format(_NUMBER))
_GROUNDED_POINT = re.compile(
    rf'(?:{STEP_LABELS[1]}:[^\n]*?{REFERENCE_AT}|^{LOCATE_START}[^\n]*?{LOCATE_AT}'
    rf'|{CENTRE_WORDS})'
    r'(?P<point>\(\s*(?P<x>[\d.]+)\s*,\s*(?P<y>[\d.]+)\s*\))')
_ANSWER_LIST = re.compile(r'\[[^\[\]]*\]')
_ANSWER_COORDINATE = re.compile(r'(?<![\d.])0\.(\d+)')
_DECIMAL_DIGITS = re.compile(r'(?<=\d\.)\d+')


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


def format_point(point: Sequence[float], decimals: int = POINT_DECIMALS) -> str:
    """Write one normalized point as ``(x, y)`` with ``decimals`` decimals."""
    (x, y), = _checked_points(point, 'point')
    return f'({_number(x, decimals)}, {_number(y, decimals)})'


def format_points(points, decimals: int = POINT_DECIMALS) -> str:
    """
    Write normalized points as ``[(x1, y1), (x2, y2)]`` with ``decimals`` decimals each.

    ``decimals`` >= 1 keeps a decimal point in every value: that tells the parser they are
    normalized, not integer pixels.
    """
    if decimals < 1:
        raise ValueError('decimals must be >= 1 (integers would read as pixel coordinates)')
    array = _checked_points(points, 'points')
    if len(array) == 0:
        raise ValueError('at least one point is needed')
    return '[' + ', '.join(format_point(p, decimals) for p in array) + ']'


def format_reference(name: str, point: Sequence[float], decimals: int = POINT_DECIMALS) -> str:
    """Write a reference with its image point: ``the red mug, at (0.420, 0.550)``."""
    return f'{name}{REFERENCE_AT}{format_point(point, decimals)}'


def format_references(names: Sequence[str], points: Sequence[Sequence[float]],
                      decimals: int = POINT_DECIMALS) -> str:
    """Write several references with their points, joined by `` and `` (step 2's text)."""
    return REFERENCE_JOIN.join(format_reference(n, p, decimals) for n, p in zip(names, points))


def format_box(box: Sequence[float], decimals: int = AREA_DECIMALS) -> str:
    """Write a normalized (x0, y0, x1, y1) box as ``x x0-x1, y y0-y1``."""
    array = np.asarray(box, dtype=float)
    if array.shape != (4,):
        raise ValueError(f'target_box must be (x0, y0, x1, y1), got shape {array.shape}')
    x0, y0, x1, y1 = _checked_points(array.reshape(2, 2), 'target_box').ravel()
    if x1 < x0 or y1 < y0:
        raise ValueError(f'target_box {tuple(array)} has x1 < x0 or y1 < y0')
    d = decimals
    return f'x {_number(x0, d)}-{_number(x1, d)}, y {_number(y0, d)}-{_number(y1, d)}'


def format_locate_answer(label: str, point: Sequence[float],
                         decimals: int = POINT_DECIMALS) -> str:
    """Say where an object is, as locate samples answer: 'The red mug is at (0.420, 0.550).'."""
    return f'{LOCATE_START}{label}{LOCATE_AT}{format_point(point, decimals)}.'


def _step_text(text: str, what: str) -> str:
    text = ' '.join(str(text).split()).rstrip('.').strip()
    if not text:
        raise ValueError(f'{what} is empty')
    if LENIENT['marker'].search(text):
        raise ValueError(f'{what} must not contain an answer marker: {text!r}')
    return text


def format_cor_answer(goal_subtype: str, reference: str, target_area: str, points, *,
                      reference_point: Optional[Sequence[float]] = None,
                      target_box: Optional[Sequence[float]] = None,
                      target_centre: Optional[Sequence[float]] = None,
                      coordinates: str = DEFAULT_COORDINATES_STEP,
                      decimals: int = POINT_DECIMALS) -> str:
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
        reference = format_reference(reference, reference_point, decimals)
    if target_box is not None:
        target_area += ', ' + format_box(target_box)
    if target_centre is not None:
        target_area += CENTRE_AT + format_point(target_centre, decimals)
    steps = zip(STEP_LABELS, (goal_subtype, reference, target_area, coordinates))
    lines = [f'{i}. {label}: {text}.' for i, (label, text) in enumerate(steps, 1)]
    lines.append(f'{ANSWER_MARKER} {format_points(points, decimals)}')
    return '\n'.join(lines)


@dataclasses.dataclass(frozen=True)
class CorAnswer:
    """The parts of a canonical CoR answer, as ``format_cor_answer`` takes them."""

    goal_subtype: str
    reference: str
    target_area: str
    coordinates: str
    points: Tuple[Tuple[float, float], ...]
    reference_point: Optional[Tuple[float, float]] = None
    target_box: Optional[Tuple[float, float, float, float]] = None
    target_centre: Optional[Tuple[float, float]] = None


def read_points(text: str) -> List[Tuple[float, float]]:
    """Return every ``(x, y)`` tuple written in ``text``, in order."""
    return [(float(x), float(y)) for x, y in _POINT.findall(text)]


def read_point(text: str) -> Optional[Tuple[float, float]]:
    """Return the first ``(x, y)`` tuple written in ``text``, or None."""
    match = _POINT.search(text)
    return None if match is None else (float(match.group(1)), float(match.group(2)))


def read_target_box(target_area: str) -> Optional[Tuple[float, float, float, float]]:
    """Return the (x0, y0, x1, y1) box a target-area step gives, or None."""
    match = _BOX.search(target_area)
    return None if match is None else tuple(float(match.group(i)) for i in (1, 3, 2, 4))


def read_target_centre(target_area: str) -> Optional[Tuple[float, float]]:
    """Return the (x, y) centre a target-area step gives, or None."""
    match = _CENTRE.search(target_area)
    return None if match is None else (float(match.group(1)), float(match.group(2)))


def _split_tail(text: str, pattern: str) -> Tuple[str, Optional[re.Match]]:
    match = re.search(pattern + r'$', text)
    return (text, None) if match is None else (text[:match.start()], match)


def read_cor_answer(text: str, max_points: int = MAX_POINTS,
                    decimals: int = POINT_DECIMALS) -> Optional[CorAnswer]:
    """Read a reply that matches ``reply_regex('cor', ...)``; None for any other text."""
    if not _grammar('cor', max_points, decimals).fullmatch(text):
        return None
    lines = text.split('\n')
    steps = [line.split(': ', 1)[1][:-1] for line in lines[:4]]
    goal, reference, area, coordinates = steps
    reference, at = _split_tail(reference, re.escape(REFERENCE_AT) + _POINT.pattern)
    area, box = _split_tail(area, ', ' + _BOX.pattern)
    centre = None
    if box is None:
        area, centre = _split_tail(area, re.escape(CENTRE_AT) + _POINT.pattern)
    return CorAnswer(
        goal, reference, area, coordinates, tuple(read_points(lines[4])),
        reference_point=read_point(at.group()) if at else None,
        target_box=read_target_box(box.group()) if box else None,
        target_centre=read_point(centre.group()) if centre else None)


def grounded_point_spans(reply: str) -> List[Tuple[Tuple[int, int], Tuple[float, float]]]:
    """
    Return ((start, end), (x, y)) of each point that names where something is in the image.

    Those are step 2's first reference point, a locate answer's point (``The red mug is at
    (x, y).``, at the reply's start) and step 3's ``centred at (x, y)``.
    """
    return [(m.span('point'), (float(m.group('x')), float(m.group('y'))))
            for m in _GROUNDED_POINT.finditer(reply)]


def answer_coordinates(reply: str) -> List[Tuple[Tuple[int, int], float]]:
    """
    Return ((start, end) of the decimals, value) of each ``0.ddd`` coordinate of the answer.

    The answer is the reply's last ``[...]`` list; coordinates written as ``1.000`` are left
    out (they have no digit to learn beyond the first).
    """
    lists = list(_ANSWER_LIST.finditer(reply))
    if not lists:
        return []
    return [(m.span(1), float(m.group()))
            for m in _ANSWER_COORDINATE.finditer(reply, *lists[-1].span())]


def decimal_spans(text: str, start: int = 0, end: Optional[int] = None) -> List[Tuple[int, int]]:
    """Return the (start, end) of each run of digits after a decimal point in text[start:end]."""
    end = len(text) if end is None else end
    return [m.span() for m in _DECIMAL_DIGITS.finditer(text, start, end)]


def _literal(text: str) -> str:
    """Escape ``text`` for a regex with the few escapes every regex grammar engine reads."""
    return re.sub(r'([\\.^$*+?{}\[\]()|-])', r'\\\1', text)


def _coordinate_regex(decimals: int) -> str:
    return f'(0\\.[0-9]{{{decimals}}}|1\\.{"0" * decimals})'


def _point_regex(decimals: int) -> str:
    number = _coordinate_regex(decimals)
    return f'\\({number}, {number}\\)'


def points_regex(max_points: int = MAX_POINTS, decimals: int = POINT_DECIMALS) -> str:
    """Return the regex of a point list ``[(x, y), ...]`` of 1..``max_points`` points."""
    if max_points < 1 or decimals < 1:
        raise ValueError('max_points and decimals must be >= 1')
    point = _point_regex(decimals)
    more = f'(, {point}){{0,{max_points - 1}}}' if max_points > 1 else ''
    return f'\\[{point}{more}\\]'


def _step_limits(max_step_chars) -> tuple:
    limits = (max_step_chars,) * 3 if isinstance(max_step_chars, int) else tuple(max_step_chars)
    if len(limits) != 3 or min(limits) < 1:
        raise ValueError('max_step_chars: one limit >= 1, or one for each of steps 2, 3, 4')
    return limits


def reply_regex(style: str = 'cor', max_points: int = MAX_POINTS,
                decimals: int = POINT_DECIMALS, max_step_chars=MAX_STEP_CHARS) -> str:
    """
    Return the regex (Python ``re`` and xgrammar syntax) of a whole reply in ``style``.

    'cor': the four steps and the answer line exactly as ``format_cor_answer`` writes them
    with a reference point and a target box or centre; 'plain': the point list alone.
    The texts of steps 2, 3 and 4 are 1..``max_step_chars`` (one limit, or one per step)
    printable ASCII characters; no lookarounds or backreferences, so it compiles to a finite
    automaton for constrained decoding. Its longest match is ``reply_max_chars(...)`` long.
    """
    answer = points_regex(max_points, decimals)
    if style == 'plain':
        return answer
    if style != 'cor':
        raise ValueError(f"unknown reply style {style!r}; expected 'cor' or 'plain'")
    reference, target, coordinates = (f'[ -~]{{1,{limit}}}'
                                      for limit in _step_limits(max_step_chars))
    point = _point_regex(decimals)
    box = _coordinate_regex(AREA_DECIMALS)
    subtypes = '|'.join(_literal(s) for s in GOAL_SUBTYPES)
    steps = (f'({subtypes})', reference + _literal(REFERENCE_AT) + point,
             f'{target}(, x {box}-{box}, y {box}-{box}|{_literal(CENTRE_AT)}{point})',
             coordinates)
    lines = [f'{i}\\. {_literal(label)}: {step}\\.\\n'
             for i, (label, step) in enumerate(zip(STEP_LABELS, steps), 1)]
    return ''.join(lines) + _literal(ANSWER_MARKER) + ' ' + answer


def reply_max_chars(style: str = 'cor', max_points: int = MAX_POINTS,
                    decimals: int = POINT_DECIMALS, max_step_chars=MAX_STEP_CHARS) -> int:
    """
    Return the length of the longest reply ``reply_regex(...)`` matches.

    It is ASCII and a token decodes to at least one byte, so a constrained reply ends within
    this many new tokens (plus the end token).
    """
    point = 8 + 2 * decimals  # (0.123, 0.456)
    answer = max_points * (point + 2)  # [ and ] in place of the last ', '
    if style == 'plain':
        return answer
    reply_regex(style, max_points, decimals, max_step_chars)  # validates the arguments
    reference, target, coordinates = _step_limits(max_step_chars)
    box = len(', x -, y -') + 4 * (2 + AREA_DECIMALS)
    texts = (max(map(len, GOAL_SUBTYPES)), reference + len(REFERENCE_AT) + point,
             target + max(box, len(CENTRE_AT) + point), coordinates)
    steps = enumerate(zip(STEP_LABELS, texts), 1)
    return len(ANSWER_MARKER) + 1 + answer + sum(len(f'{i}. {label}: .\n') + text
                                                 for i, (label, text) in steps)


@functools.lru_cache(maxsize=16)
def _grammar(style: str, max_points: int, decimals: int) -> re.Pattern:
    return re.compile(reply_regex(style, max_points, decimals))


def matches_grammar(reply: str, style: str = 'cor', max_points: int = MAX_POINTS,
                    decimals: int = POINT_DECIMALS) -> bool:
    """Tell whether the whole ``reply`` matches ``reply_regex(style, ...)``."""
    return _grammar(style, max_points, decimals).fullmatch(reply) is not None


def user_turn(prompt: str, image_url: Optional[str] = None, question_first: bool = False,
              with_image: bool = True) -> Dict:
    """
    Return the chat user turn that asks ``prompt`` about one image.

    Parts: the image (a processor placeholder, or with ``image_url`` an OpenAI ``image_url``
    part), then the text; ``question_first`` swaps them, no ``with_image`` drops the image.
    """
    image = ({'type': 'image'} if image_url is None
             else {'type': 'image_url', 'image_url': {'url': image_url}})
    parts = [image, {'type': 'text', 'text': prompt}] if with_image else [
        {'type': 'text', 'text': prompt}]
    return {'role': 'user', 'content': parts[::-1] if question_first else parts}


def assistant_turn(reply: str) -> Dict:
    """Return the chat assistant turn holding ``reply``."""
    return {'role': 'assistant', 'content': [{'type': 'text', 'text': reply}]}


def llava_human_value(prompt: str) -> str:
    """Return a LLaVA-format human message: the image tag, then the prompt."""
    return IMAGE_TAG + prompt


def llava_prompt(value: str) -> str:
    """Return the prompt of a LLaVA-format human message (its image tag removed)."""
    return value.replace(IMAGE_TAG, '')
