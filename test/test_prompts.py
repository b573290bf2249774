"""Prompt building and the canonical CoR answer writer."""

import numpy as np
import pytest
from trace_ros.core.answer_format import (
    ANSWER_MARKER, format_cor_answer, format_points, GOAL_FREE_SPACE, GOAL_OBJECT_REFERENCE,
    STEP_LABELS)
from trace_ros.core.parsing import parse_answer
from trace_ros.core.prompts import build_prompt, COR_SUFFIX, ROBOPOINT_SUFFIX, strip_format_suffix

CANONICAL = (
    '1. Goal subtype: object reference.\n'
    '2. Reference: the red mug, at (0.420, 0.550).\n'
    '3. Target area: the free table surface left of the red mug, x 0.20-0.38, y 0.50-0.62.\n'
    '4. Coordinates: points sampled inside the target area.\n'
    'Answer: [(0.310, 0.560), (0.290, 0.600)]')
W2P_QUESTION = ('Please point out the free area between the two cups. ' + ROBOPOINT_SUFFIX)


def test_cor_prompt_asks_for_the_four_steps_and_the_answer_line():
    prompt = build_prompt('put the mug left of the plate', style='cor')
    assert prompt == 'put the mug left of the plate. ' + COR_SUFFIX
    for label in STEP_LABELS:
        assert f'{label}:' in prompt
    assert ANSWER_MARKER in prompt
    assert build_prompt('put the mug left of the plate') == prompt


def test_plain_prompt_is_robopoint_style():
    prompt = build_prompt('Find free space on the table?', style='plain')
    assert prompt == 'Find free space on the table? ' + ROBOPOINT_SUFFIX


def test_an_existing_robopoint_suffix_is_replaced():
    assert strip_format_suffix(W2P_QUESTION) == (
        'Please point out the free area between the two cups.')
    assert build_prompt(W2P_QUESTION, style='plain') == W2P_QUESTION
    cor = build_prompt(W2P_QUESTION, style='cor')
    assert cor.count('Your answer should') == 0 and cor.endswith(COR_SUFFIX)


@pytest.mark.parametrize('instruction, style', [('', 'cor'), ('   ', 'plain'),
                                                (ROBOPOINT_SUFFIX, 'cor'), ('x', 'json')])
def test_bad_prompt_requests_raise(instruction, style):
    with pytest.raises(ValueError):
        build_prompt(instruction, style=style)


def test_format_points():
    assert format_points([(0.31, 0.56), (0.29, 0.6)]) == '[(0.310, 0.560), (0.290, 0.600)]'
    assert format_points((0.5, 1.0), decimals=1) == '[(0.5, 1.0)]'
    assert format_points(np.array([[-0.0, 0.0]])) == '[(0.000, 0.000)]'
    assert format_points([(0.99996, 0.5)], decimals=4) == '[(1.0000, 0.5000)]'


@pytest.mark.parametrize('points, decimals', [
    ([(0.5, 0.5)], 0), ([], 3), ([(0.5, 1.2)], 3), ([(-0.1, 0.5)], 3), ([(np.nan, 0.5)], 3),
    ([(0.1, 0.2, 0.3)], 3)])
def test_format_points_rejects_what_would_not_parse_back(points, decimals):
    with pytest.raises(ValueError):
        format_points(points, decimals)


def test_canonical_cor_answer_is_exact_and_parses_back():
    text = format_cor_answer(
        GOAL_OBJECT_REFERENCE, 'the red mug', 'the free table surface left of the red mug',
        [(0.31, 0.56), (0.29, 0.6)], reference_point=(0.42, 0.55),
        target_box=(0.2, 0.5, 0.38, 0.62))
    assert text == CANONICAL
    parsed = parse_answer(text)
    assert parsed.goal_subtype == GOAL_OBJECT_REFERENCE
    assert parsed.reference == 'the red mug, at (0.420, 0.550)'
    assert parsed.target_area.endswith('x 0.20-0.38, y 0.50-0.62')
    assert parsed.coordinates == 'points sampled inside the target area'
    np.testing.assert_array_equal(parsed.points, [(0.31, 0.56), (0.29, 0.6)])
    assert parsed.errors == ()


def test_cor_answer_with_the_target_area_centre_parses_back():
    text = format_cor_answer(GOAL_FREE_SPACE, 'the table', 'its empty left part',
                             [(0.31, 0.56), (0.29, 0.6)], target_centre=(0.31, 0.56))
    parsed = parse_answer(text)
    assert parsed.target_area == 'its empty left part, centred at (0.310, 0.560)'
    np.testing.assert_array_equal(parsed.points, [(0.31, 0.56), (0.29, 0.6)])
    assert parsed.errors == ()


def test_cor_answer_texts_are_one_line_without_trailing_period():
    text = format_cor_answer(GOAL_FREE_SPACE, '  the\ntable. ', 'its empty\n left part..',
                             [(0.2, 0.4)], coordinates='three points', decimals=2)
    assert text.splitlines() == ['1. Goal subtype: free space.', '2. Reference: the table.',
                                 '3. Target area: its empty left part.',
                                 '4. Coordinates: three points.', 'Answer: [(0.20, 0.40)]']


@pytest.mark.parametrize('kwargs', [
    {'goal_subtype': 'placement'}, {'reference': ''}, {'target_area': 'see Answer: below'},
    {'reference_point': (0.5, 1.5)}, {'target_box': (0.5, 0.5, 0.4, 0.6)},
    {'target_box': (0.1, 0.2, 0.3)}, {'target_centre': (0.5, -0.1)}, {'points': []}])
def test_format_cor_answer_rejects_bad_input(kwargs):
    args = {'goal_subtype': GOAL_FREE_SPACE, 'reference': 'the table',
            'target_area': 'the left part', 'points': [(0.2, 0.4)], **kwargs}
    with pytest.raises(ValueError):
        format_cor_answer(**args)


GOLDEN_COR = (
    'put the mug left of the bowl. Reason step by step, then answer, in exactly this format:\n'
    '1. Goal subtype: object reference or free space.\n'
    '2. Reference: the reference object or surface, at (x, y).\n'
    '3. Target area: where the item should go, x x0-x1, y y0-y1.\n'
    '4. Coordinates: how the points are chosen inside the target area.\n'
    'Answer: [(x1, y1), (x2, y2), ...]\n'
    'All coordinates are between 0 and 1, normalized to the image width and height.')


def test_without_a_point_count_the_prompt_is_unchanged():
    assert build_prompt('put the mug left of the bowl') == GOLDEN_COR
    assert build_prompt('put the mug left of the bowl', num_points=0) == GOLDEN_COR
    assert build_prompt('x', 'plain', num_points=0) == 'x. ' + ROBOPOINT_SUFFIX


@pytest.mark.parametrize('count, template', [
    (1, '[(x1, y1)]'), (3, '[(x1, y1), (x2, y2), (x3, y3)]'),
    (5, '[(x1, y1), (x2, y2), ..., (x5, y5)]')])
def test_a_point_count_is_asked_for_in_step_4_and_the_answer(count, template):
    prompt = build_prompt('put the mug left of the bowl', num_points=count)
    noun = 'point' if count == 1 else 'points'
    assert f'4. Coordinates: {count} {noun} chosen inside the target area.\n' in prompt
    assert f'Answer: {template}\n' in prompt
    # Everything but step 4 and the template stays as without a count.
    unchanged = [line for line in GOLDEN_COR.splitlines() if not line.startswith(('4.', 'A'))]
    assert [line for line in prompt.splitlines() if not line.startswith(('4.', 'A'))] == unchanged
    assert build_prompt('x', 'plain', num_points=count).endswith(f'Give exactly {count} {noun}.')
