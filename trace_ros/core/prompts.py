"""
Prompts for TRACE (chain of reasoning) and RoboPoint (points only) answers.

``COR_SUFFIX`` asks for the answer format that ``trace_ros.core.answer_format`` writes,
reads and turns into a grammar.
"""

import re

from trace_ros.core.answer_format import ANSWER_MARKER, GOAL_SUBTYPES, REFERENCE_AT, STEP_LABELS

ROBOPOINT_SUFFIX = (
    'Your answer should be formatted as a list of tuples, i.e. [(x1, y1), (x2, y2), ...], '
    'where each tuple contains the x and y coordinates of a point satisfying the conditions '
    'above. The coordinates should be between 0 and 1, indicating the normalized pixel '
    'locations of the points in the image.')

_COR_STEP_HINTS = (' or '.join(GOAL_SUBTYPES),
                   f'the reference object or surface{REFERENCE_AT}(x, y)',
                   'where the item should go, x x0-x1, y y0-y1',
                   'how the points are chosen inside the target area')


def _cor_suffix(hints, answer_template: str) -> str:
    return ('Reason step by step, then answer, in exactly this format:\n'
            + ''.join(f'{i}. {label}: {hint}.\n'
                      for i, (label, hint) in enumerate(zip(STEP_LABELS, hints), 1))
            + f'{ANSWER_MARKER} {answer_template}\n'
            'All coordinates are between 0 and 1, normalized to the image width and height.')


COR_SUFFIX = _cor_suffix(_COR_STEP_HINTS, '[(x1, y1), (x2, y2), ...]')

PROMPT_STYLES = ('cor', 'plain')


def _answer_template(num_points: int) -> str:
    """Return ``[(x1, y1), (x2, y2), ..., (xN, yN)]`` for exactly ``num_points`` points."""
    listed = num_points if num_points <= 3 else 2
    shown = [f'(x{i}, y{i})' for i in range(1, listed + 1)]
    if num_points > 3:
        shown += ['...', f'(x{num_points}, y{num_points})']
    return '[' + ', '.join(shown) + ']'


def counted_suffix(style: str, num_points: int) -> str:
    """
    Return the answer-format suffix of ``style`` asking for exactly ``num_points`` points.

    CoR: step 4 says ``N points ...`` (as the dataset writes it) and the answer template
    lists N tuples; plain: RoboPoint's suffix with the count appended.
    """
    if num_points < 1:
        raise ValueError(f'num_points must be >= 1, got {num_points}')
    noun = 'point' if num_points == 1 else 'points'
    if style == 'plain':
        return f'{ROBOPOINT_SUFFIX} Give exactly {num_points} {noun}.'
    hints = _COR_STEP_HINTS[:3] + (f'{num_points} {noun} chosen inside the target area',)
    return _cor_suffix(hints, _answer_template(num_points))


_SUFFIX_RE = re.compile(r'\s*your answer should be formatted\b', re.IGNORECASE)


def strip_format_suffix(question: str) -> str:
    """Drop a RoboPoint answer-format suffix ("Your answer should be formatted ...")."""
    match = _SUFFIX_RE.search(question)
    return (question[:match.start()] if match else question).strip()


def build_prompt(instruction: str, style: str = 'cor', num_points: int = 0) -> str:
    """
    Prompt for one placement instruction: ``cor`` (TRACE steps) or ``plain`` (RoboPoint).

    An answer-format suffix already in the instruction (Where2Place questions carry
    RoboPoint's) is replaced, and a final period added, so both styles ask the same question.
    ``num_points`` > 0 asks for exactly that many points (``counted_suffix``); 0 leaves the
    count to the model and the prompt as it always was.
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f'unknown prompt style {style!r}; expected one of {PROMPT_STYLES}')
    question = strip_format_suffix(instruction)
    if not question:
        raise ValueError('empty instruction')
    if question[-1] not in '.?!':
        question += '.'
    suffix = COR_SUFFIX if style == 'cor' else ROBOPOINT_SUFFIX
    if num_points:
        suffix = counted_suffix(style, num_points)
    return f'{question} {suffix}'
