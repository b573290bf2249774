"""
Parse a model reply into its CoR steps and its answer points; never raises on any text.

The patterns come from ``trace_ros.core.answer_format`` (``LENIENT``), which owns the format.

Only the answer counts: tuples written in the reasoning (a reference "at (0.42, 0.55)") are
never points. The answer is found, in this order:

1. after the last ``Answer:`` marker (case-insensitive, ``**Answer:**`` too): from the first
   ``(`` or ``[`` on, a ``[...]`` list up to its first ``]`` (``]]`` for ``[[x, y], ...]``)
   or the end of the text when unclosed, or a run of bare ``(x, y)`` tuples;
2. without a marker, the whole text when it holds only numbers, brackets and separators
   (plain RoboPoint replies, truncated ones included);
3. otherwise the run of tuples ending the text (trailing ``.``, quotes, markdown allowed),
   unless it lies in a Goal subtype / Reference / Target area step.

Each tuple ``(...)`` or ``[...]`` is read as follows:

* Values written with a ``.`` or an exponent are floats; a tuple holding one is normalized
  and every value must lie in [0, 1] (``(0.5, 1)`` is fine). A tuple of plain integers is in
  pixels (centres on integers, converted with ``image_size``), except that all-0/1 integer
  tuples such as ``(0, 1)`` are read as normalized when the answer has normalized tuples.
* Four values are a box ``(x0, y0, x1, y1)``, as in the Where2Place scorer; pixel boxes are
  half-open (columns ``x0 .. x1 - 1``). With ``image_size`` a box becomes the centres of the
  pixels it covers, subsampled on a regular grid to at most MAX_BOX_POINTS; a box covering
  no pixel centre, or any box without ``image_size``, becomes its centre point.
* Rejected, each with a reason in ``errors`` and counted in ``rejected``: NaN/inf, negative
  values, normalized values above 1, pixels outside the image or without ``image_size``,
  boxes with x1 < x0 or y1 < y0, other arities, non-numbers and unclosed tuples.
"""

import dataclasses
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from trace_ros.core.answer_format import LENIENT

MAX_BOX_POINTS = 1024
MAX_TUPLES = 1000
MAX_ERRORS = 10
STEP_KEYS = ('goal_subtype', 'reference', 'target_area', 'coordinates', 'answer')

_MARKER_RE = LENIENT['marker']
_GROUP_RE = LENIENT['group']
_OPEN_RE = LENIENT['open']
_OPENER_RE = LENIENT['opener']
_DIGIT_RE = LENIENT['digit']
_NESTED_RE = LENIENT['nested']
_CLOSER_RE = LENIENT['closer']
_DOUBLE_CLOSER_RE = LENIENT['double_closer']
_SEPARATOR_RE = LENIENT['separator']
_END_RE = LENIENT['end']
_ONLY_TUPLES_RE = LENIENT['only_tuples']
_NUMBER_RE = LENIENT['number']
_NON_FINITE_RE = LENIENT['non_finite']
_STEP_RE = LENIENT['step']
_STEP_FIELDS = {'g': 'goal_subtype', 'r': 'reference', 't': 'target_area', 'c': 'coordinates'}
_STEP_NAMES = {'g': 'Goal subtype', 'r': 'Reference', 't': 'Target area'}


@dataclasses.dataclass(frozen=True, eq=False)
class ParsedAnswer:
    """
    A parsed reply: CoR steps ('' when absent), answer points and reasons for rejections.

    ``points`` is a read-only (N, 2) array of normalized (x, y); ``span`` the (start, end)
    of ``answer`` in the text; ``answer_format`` 'normalized', 'pixel', 'box' (any box) or
    'mixed'; ``source`` 'marker', 'whole' or 'trailing'; ``rejected`` counts answer tuples
    dropped, whose reasons are in ``errors``.
    """

    points: np.ndarray
    goal_subtype: str = ''
    reference: str = ''
    target_area: str = ''
    coordinates: str = ''
    answer: str = ''
    span: Optional[Tuple[int, int]] = None
    answer_format: str = ''
    source: str = ''
    rejected: int = 0
    errors: Tuple[str, ...] = ()
    image_size: Optional[Tuple[int, int]] = None

    @property
    def ok(self) -> bool:
        """At least one usable answer point."""
        return len(self.points) > 0

    def pixels(self, image_size: Optional[Sequence[int]] = None) -> np.ndarray:
        """Return the points as pixel coordinates, centres on integers: u = x * width - 0.5."""
        size = image_size if image_size is not None else self.image_size
        if size is None:
            raise ValueError('pixels() needs an image size (none was given to parse_answer)')
        width, height = _checked_size(size)
        return self.points * (width, height) - 0.5


def _checked_size(image_size) -> Tuple[int, int]:
    try:
        width, height = (int(v) for v in image_size)
        valid = width > 0 and height > 0 and tuple(image_size) == (width, height)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f'image_size must be (width, height) positive integers, '
                         f'got {image_size!r}')
    return width, height


def _frozen(rows) -> np.ndarray:
    points = np.array(rows, dtype=float).reshape(-1, 2)
    points.flags.writeable = False
    return points


def _clean_step(text: str) -> str:
    return text.strip().strip('*_').strip().rstrip('.').strip()


def _shown(text: str) -> str:
    text = ' '.join(text.split())
    return text if len(text) <= 48 else text[:45] + '...'


class _Reader:
    """Turns the answer's tuples into normalized points, collecting reasons for rejections."""

    def __init__(self, image_size: Optional[Tuple[int, int]]):
        self.size = image_size
        self.errors: List[str] = []
        self.rejected = 0
        self.kinds = set()
        self.rows: List[List[float]] = []

    def reject(self, raw: str, reason: str) -> None:
        self.rejected += 1
        self.errors.append(f'{_shown(raw)}: {reason}')

    def values(self, raw: str, content: str):
        """(values, any float written) of one tuple, or None after rejecting it."""
        values, written_float = [], False
        if not content.strip():
            return self.reject(raw, 'empty')
        for item in content.split(','):
            item = item.strip().replace('\u2212', '-')
            if _NUMBER_RE.fullmatch(item):
                values.append(float(item))
                written_float = written_float or '.' in item or 'e' in item.lower()
            elif _NON_FINITE_RE.fullmatch(item):
                return self.reject(raw, 'not a finite number')
            else:
                return self.reject(raw, 'not a tuple of numbers')
        if len(values) not in (2, 4):
            return self.reject(raw, f'{len(values)} values; expected (x, y) or a box '
                                    '(x0, y0, x1, y1)')
        if not all(math.isfinite(v) for v in values):
            return self.reject(raw, 'not a finite number')
        if any(v < 0.0 for v in values):
            return self.reject(raw, 'negative coordinate')
        return values, written_float

    def read(self, raw: str, values: List[float], normalized: bool) -> None:
        box = len(values) == 4
        if box and (values[2] < values[0] or values[3] < values[1]):
            return self.reject(raw, 'box corners out of order (x1 < x0 or y1 < y0)')
        if normalized:
            if any(v > 1.0 for v in values):
                return self.reject(raw, 'normalized coordinate above 1')
        elif self.size is None:
            return self.reject(raw, 'integer pixel coordinates need the image size')
        else:
            width, height = self.size
            limit = (width, height) * 2 if box else (width - 1, height - 1)
            if any(v > lim for v, lim in zip(values, limit)):
                return self.reject(raw, f'pixel outside the {width}x{height} image')
            if box:
                values = [v / s for v, s in zip(values, (width, height) * 2)]
            else:
                values = [(values[0] + 0.5) / width, (values[1] + 0.5) / height]
        self.kinds.add('box' if box else 'normalized' if normalized else 'pixel')
        self.rows.extend(self._box_points(*values) if box else [values])

    def _box_points(self, x0, y0, x1, y1) -> List[List[float]]:
        """Centres of the pixels inside a normalized box, or its centre (module docstring)."""
        centre = [[(x0 + x1) / 2.0, (y0 + y1) / 2.0]]
        if self.size is None:
            return centre
        width, height = self.size
        cols = np.arange(max(math.ceil(x0 * width - 0.5), 0),
                         min(math.floor(x1 * width - 0.5), width - 1) + 1)
        rows = np.arange(max(math.ceil(y0 * height - 0.5), 0),
                         min(math.floor(y1 * height - 0.5), height - 1) + 1)
        if len(cols) == 0 or len(rows) == 0:
            return centre
        stride = max(1, math.ceil(math.sqrt(len(cols) * len(rows) / MAX_BOX_POINTS)))
        while math.ceil(len(cols) / stride) * math.ceil(len(rows) / stride) > MAX_BOX_POINTS:
            stride += 1
        cols = cols[(len(cols) - 1) % stride // 2::stride]
        rows = rows[(len(rows) - 1) % stride // 2::stride]
        u, v = np.meshgrid(cols, rows)
        return np.stack([(u.ravel() + 0.5) / width, (v.ravel() + 0.5) / height], 1).tolist()

    def read_all(self, groups: Sequence[Tuple[str, str]]) -> None:
        """Read (raw, content) tuples, deciding whether all-0/1 integer tuples are normalized."""
        if len(groups) > MAX_TUPLES:
            self.errors.append(f'{len(groups)} tuples; only the first {MAX_TUPLES} are read')
            groups = groups[:MAX_TUPLES]
        parsed = [(raw, self.values(raw, content)) for raw, content in groups]
        parsed = [(raw, v[0], v[1]) for raw, v in parsed if v is not None]
        any_normalized = any(written_float for _, _, written_float in parsed)
        for raw, values, written_float in parsed:
            unit = all(v in (0.0, 1.0) for v in values)
            self.read(raw, values, written_float or (unit and any_normalized))

    def points(self) -> np.ndarray:
        return _frozen(self.rows)

    def answer_format(self) -> str:
        if 'box' in self.kinds:
            return 'box'
        return self.kinds.pop() if len(self.kinds) == 1 else 'mixed' if self.kinds else ''


def _marker_span(text: str, start: int) -> Tuple[int, int]:
    """Find the answer after a marker ending at ``start`` (module docstring, rule 1)."""
    opener = _OPENER_RE.search(text, start)
    if opener is None:
        return start, start
    begin = opener.start()
    if text[begin] == '[':
        nested = _NESTED_RE.match(text, begin + 1)
        closer = (_DOUBLE_CLOSER_RE if nested else _CLOSER_RE).search(text, begin + 1)
        return begin, closer.end() if closer else len(text)
    end = begin
    for group in _GROUP_RE.finditer(text, begin):
        if not _SEPARATOR_RE.fullmatch(text, end, group.start()):
            break
        end = group.end()
    unclosed = _OPEN_RE.match(text, _SEPARATOR_RE.match(text, end).end())
    return begin, len(text) if unclosed and unclosed.end() == len(text) else end


def _trailing_span(text: str) -> Optional[Tuple[int, int]]:
    """Find the run of tuples ending the text (module docstring, rule 3), or None."""
    groups = list(_GROUP_RE.finditer(text))
    if not groups:
        return None
    last = groups[-1]
    unclosed = _OPEN_RE.match(text, _SEPARATOR_RE.match(text, last.end()).end())
    if unclosed and unclosed.end() == len(text):
        end = len(text)
    elif _END_RE.fullmatch(text, last.end()):
        end = last.end()
    else:
        return None
    begin = last.start()
    for group in reversed(groups[:-1]):
        if not _SEPARATOR_RE.fullmatch(text, group.end(), begin):
            break
        begin = group.start()
    if begin > 0 and text[begin - 1] == '[':
        begin -= 1
    return begin, end


def _locate(text: str, steps: List[re.Match], errors: List[str]):
    """(span or None, source, end of the reasoning) of the answer in ``text``."""
    markers = list(_MARKER_RE.finditer(text))
    if markers:
        span = _marker_span(text, markers[-1].end())
        if span[0] == span[1]:
            errors.append('no (x, y) tuples after the "Answer:" marker')
            return None, 'marker', markers[-1].start()
        return span, 'marker', markers[-1].start()
    if _ONLY_TUPLES_RE.fullmatch(text):
        return (0, len(text)), 'whole', 0
    span = _trailing_span(text)
    owners = [_STEP_NAMES[s.group(1)[0].lower()] for s in steps
              if span and s.start() <= span[0] < s.end() and s.group(1)[0].lower() in _STEP_NAMES]
    if span is None or owners:
        where = f' (the tuples there belong to the {owners[0]} step)' if owners else ''
        errors.append(f'no "Answer:" marker and no point list ending the reply{where}')
        return None, '', len(text)
    return span, 'trailing', span[0]


def _tuples(answer: str) -> Tuple[List[Tuple[str, str]], List[str], bool]:
    """(raw, content) of the closed tuples, the unclosed ones, and numbers outside both."""
    groups = [(m.group(0), m.group(1)) for m in _GROUP_RE.finditer(answer)]
    leftover = _GROUP_RE.sub(' ', answer).lstrip()
    if leftover.startswith('['):
        leftover = leftover[1:]
    unclosed = [m.group(0) for m in _OPEN_RE.finditer(leftover)]
    stray = _DIGIT_RE.search(_OPEN_RE.sub(' ', leftover)) is not None
    return groups, unclosed, stray


def _as_text(text) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode('utf-8', errors='replace')
    return '' if text is None else str(text)


def _find_steps(text: str, errors: List[str]):
    """(answer span or None, source, first match of each CoR step before the answer)."""
    matches = list(_STEP_RE.finditer(text))
    span, source, reasoning_end = _locate(text, matches, errors)
    steps = {}
    for step in matches:
        key = _STEP_FIELDS[step.group(1)[0].lower()]
        if step.start() < reasoning_end and key not in steps:
            steps[key] = step
    return span, source, steps


def step_spans(text: str) -> Dict[str, Tuple[int, int]]:
    """
    Return the (start, end) character span of each part of ``text`` that parse_answer finds.

    Keys follow STEP_KEYS order and are present only when found and non-empty: a step's span
    is its text after the label (as in its ParsedAnswer field, before trimming markdown and
    the final period), the answer's is ``ParsedAnswer.span``.
    """
    text = _as_text(text)
    if not text.strip():
        return {}
    span, _, steps = _find_steps(text, [])
    spans = {}
    for key in STEP_KEYS[:-1]:
        if key in steps:
            start, end = steps[key].span(2)
            content = text[start:end]
            start += len(content) - len(content.lstrip())
            end -= len(content) - len(content.rstrip())
            if end > start:
                spans[key] = (start, end)
    if span and span[1] > span[0]:
        spans['answer'] = span
    return spans


def parse_answer(text: str, image_size: Optional[Sequence[int]] = None) -> ParsedAnswer:
    """
    Parse a reply (rules in the module docstring); ``image_size`` is (width, height).

    Never raises on any text; raises ValueError only for a malformed ``image_size``.
    """
    size = _checked_size(image_size) if image_size is not None else None
    text = _as_text(text)
    if not text.strip():
        return ParsedAnswer(_frozen([]), errors=('empty reply',), image_size=size)
    errors: List[str] = []
    span, source, steps = _find_steps(text, errors)
    fields = {key: _clean_step(step.group(2)) for key, step in steps.items()}
    reader = _Reader(size)
    answer = text[span[0]:span[1]] if span else ''
    if span:
        groups, unclosed, stray = _tuples(answer)
        reader.read_all(groups)
        for raw in unclosed:
            reader.reject(raw, 'unclosed tuple')
        if stray:
            errors.append('numbers outside any tuple were ignored')
        if not groups and not unclosed:
            errors.append(f'no (x, y) tuples in the answer {_shown(answer)!r}')
    errors[:0] = reader.errors
    if len(errors) > MAX_ERRORS:
        errors[MAX_ERRORS - 1:] = [f'... and {len(errors) - MAX_ERRORS + 1} more']
    return ParsedAnswer(reader.points(), answer=answer, span=span,
                        answer_format=reader.answer_format(), source=source,
                        rejected=reader.rejected, errors=tuple(errors), image_size=size,
                        **fields)
