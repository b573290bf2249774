"""Answer parsing: tricky replies, properties that hold for any text, and speed."""


from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import numpy as np
import pytest
from trace_ros.core.answer_format import format_cor_answer, format_points, GOAL_SUBTYPES
from trace_ros.core.parsing import MAX_BOX_POINTS, MAX_ERRORS, parse_answer

COR = ('1. Goal subtype: object reference.\n2. Reference: the red mug, at (0.42, 0.55).\n'
       '3. Target area: left of the mug, x 0.20-0.38, y 0.50-0.62.\n'
       '4. Coordinates: two points.\nAnswer: [(0.31, 0.56), (0.29, 0.60)]')
SIZE = (640, 480)

# (reply, image_size, expected points, answer_format, substring of the errors or None)
CASES = [
    (COR, None, [(0.31, 0.56), (0.29, 0.6)], 'normalized', None),
    ('[(0.1, 0.2), (0.3, 0.4)]', None, [(0.1, 0.2), (0.3, 0.4)], 'normalized', None),
    ('  (0.1, 0.2)\n', None, [(0.1, 0.2)], 'normalized', None),
    ('2. Reference: the mug, at (0.42, 0.55).', None, [], '', 'Reference step'),
    ('3. Target area: near (0.4, 0.5)', None, [], '', 'Target area step'),
    ('The mug is at (0.42, 0.55), so I would put it there. Done', None, [], '', 'marker'),
    ('Answer: [(0.1, 0.1)]\nHmm, no.\nFinal answer: [(0.2, 0.3)]', None, [(0.2, 0.3)],
     'normalized', None),
    ('Answer: [(0.1, 0.2)]\nAnswer:', None, [], '', 'after the "Answer:"'),
    ('answer : [(0.1, 0.2)]', None, [(0.1, 0.2)], 'normalized', None),
    ('**Answer:** `[(0.1, 0.2)]`', None, [(0.1, 0.2)], 'normalized', None),
    ('Answer: [(0.31, 0.56)]. Near the mug (0.42, 0.55).', None, [(0.31, 0.56)],
     'normalized', None),
    ('Answer:\n[\n  (0.1 , 0.2),\n  (0.3,0.4)\n].', None, [(0.1, 0.2), (0.3, 0.4)],
     'normalized', None),
    ('Answer: [(0.1, 0.2), (0.3, 0.4)', None, [(0.1, 0.2), (0.3, 0.4)], 'normalized', None),
    ('Answer: [(0.1, 0.2), (0.3, 0.', None, [(0.1, 0.2)], 'normalized', 'unclosed'),
    ('[(0.1, 0.2), (0.3, 0.4', None, [(0.1, 0.2)], 'normalized', 'unclosed'),
    ('Answer: (0.1, 0.2), (0.3, 0.4) and (0.5, 0.6). The mug (0.9, 0.9)', None,
     [(0.1, 0.2), (0.3, 0.4), (0.5, 0.6)], 'normalized', None),
    ('Answer: [[0.1, 0.2], [0.3, 0.4]] near [0.9, 0.9]', None, [(0.1, 0.2), (0.3, 0.4)],
     'normalized', None),
    ('Answer: [(5e-1, 2.5E-1), (.5, 1.)]', None, [(0.5, 0.25), (0.5, 1.0)], 'normalized',
     None),
    ('Answer: [(0.5, 1), (1, 0.0), (0, 1)]', None, [(0.5, 1), (1, 0), (0, 1)], 'normalized',
     None),
    ('Answer: [(0, 1)]', SIZE, [(0.5 / 640, 1.5 / 480)], 'pixel', None),
    ('Answer: [(320, 240), (639, 479)]', SIZE,
     [(320.5 / 640, 240.5 / 480), (639.5 / 640, 479.5 / 480)], 'pixel',
     None),
    ('Answer: [(320, 240)]', None, [], '', 'need the image size'),
    ('Answer: [(640, 240), (0.5, 0.5)]', SIZE, [(0.5, 0.5)], 'normalized', 'outside the 640x480'),
    ('Answer: [(320, 240), (0.5, 0.5)]', SIZE, [(320.5 / 640, 240.5 / 480), (0.5, 0.5)], 'mixed',
     None),
    ('Answer: [(0.2, 0.4, 0.6, 0.8)]', None, [(0.4, 0.6)], 'box', None),
    ('Answer: [(0.5, 0.5, 0.5001, 0.5001)]', SIZE, [(0.50005, 0.50005)], 'box', None),
    ('Answer: [(2, 3, 4, 5)]', SIZE, [(2.5 / 640, 3.5 / 480), (3.5 / 640, 3.5 / 480),
                                      (2.5 / 640, 4.5 / 480), (3.5 / 640, 4.5 / 480)], 'box',
     None),
    ('Answer: [(0.6, 0.4, 0.2, 0.8)]', None, [], '', 'out of order'),
    ('Answer: [(nan, 0.2), (0.1, inf), (1e999, 0.1), (0.1, 0.2)]', None, [(0.1, 0.2)],
     'normalized', 'not a finite number'),
    ('Answer: [(-0.1, 0.2), (\u22120.1, 0.2)]', None, [], '', 'negative'),
    ('Answer: [(0.5, 1.2)]', None, [], '', 'above 1'),
    ('Answer: [(0.3; 0.4), (0.1, 0.2, 0.3), (x1, y1), (), (0.1, 0.2)]', None, [(0.1, 0.2)],
     'normalized', '3 values'),
    ('Answer: [(\u0660.\u0665, 0.5)]', None, [], '', 'not a tuple of numbers'),
    ('Answer: []', None, [], '', '[]: empty'),
    ('Answer: nothing fits here', None, [], '', 'after the "Answer:"'),
    ('Answer: [(0.1, 0.2), 0.3, 0.4]', None, [(0.1, 0.2)], 'normalized', 'outside any tuple'),
    ('Answer: I cannot tell.', None, [], '', 'after the "Answer:"'),
    ('Answer\uff1a [(0.1, 0.2)] \U0001F916 \u2014 \u2713', None, [], '', 'marker'),
    ('Answer: [(0.1, 0.2)] \U0001F916 \u2014 (0.9, 0.9) \u2713', None, [(0.1, 0.2)],
     'normalized', None),
    ('\x00\ufeffAnswer:\u200b[(0.1,\u00a00.2)]\x00', None, [(0.1, 0.2)], 'normalized', None),
    ('The free space is here: [(0.1, 0.2), (0.3, 0.4)].', None, [(0.1, 0.2), (0.3, 0.4)],
     'normalized', None),
    ('4. Coordinates: [(0.1, 0.2)]', None, [(0.1, 0.2)], 'normalized', None),
    ('', None, [], '', 'empty reply'),
    (' \n\t ', None, [], '', 'empty reply'),
]


@pytest.mark.parametrize('text, size, points, answer_format, error', CASES)
def test_tricky_replies(text, size, points, answer_format, error):
    parsed = parse_answer(text, image_size=size)
    np.testing.assert_allclose(parsed.points, np.reshape(points, (-1, 2)), atol=1e-12)
    assert parsed.answer_format == answer_format
    assert parsed.ok == bool(points)
    if error is None:
        assert parsed.errors == ()
    else:
        assert any(error in e for e in parsed.errors), parsed.errors


def test_steps_and_answer_span():
    parsed = parse_answer(COR)
    assert (parsed.goal_subtype, parsed.reference, parsed.target_area, parsed.coordinates) == (
        'object reference', 'the red mug, at (0.42, 0.55)',
        'left of the mug, x 0.20-0.38, y 0.50-0.62', 'two points')
    assert parsed.source == 'marker'
    assert parsed.answer == '[(0.31, 0.56), (0.29, 0.60)]'
    assert COR[slice(*parsed.span)] == parsed.answer


def test_markdown_and_variant_step_labels():
    text = ('**1. Goal Subtype:** free space\n- Reference surface: the table\n'
            'Step 3: Target area: right half\n\nAnswer: [(0.7, 0.5)]')
    parsed = parse_answer(text)
    assert (parsed.goal_subtype, parsed.reference, parsed.target_area) == (
        'free space', 'the table', 'right half')


def test_pixels_use_the_pixel_centre_convention():
    parsed = parse_answer('Answer: [(0.5, 0.5), (0.0, 1.0)]', image_size=(4, 2))
    np.testing.assert_allclose(parsed.pixels(), [(1.5, 0.5), (-0.5, 1.5)])
    np.testing.assert_allclose(parsed.pixels((8, 8)), [(3.5, 3.5), (-0.5, 7.5)])
    pixel = parse_answer('(3, 1)', image_size=(4, 2))
    np.testing.assert_allclose(pixel.pixels(), [(3, 1)])
    with pytest.raises(ValueError):
        parse_answer('(0.5, 0.5)').pixels()


def test_large_boxes_are_subsampled_on_a_grid():
    parsed = parse_answer('Answer: [(0.0, 0.0, 1.0, 1.0), (0.5, 0.5)]', image_size=SIZE)
    assert MAX_BOX_POINTS // 2 < len(parsed.points) <= MAX_BOX_POINTS + 1
    assert np.all((parsed.points > 0) & (parsed.points < 1))
    np.testing.assert_allclose(parsed.points.mean(axis=0), (0.5, 0.5), atol=0.01)
    np.testing.assert_array_equal(parsed.points[-1], (0.5, 0.5))


def test_rejections_are_counted_and_errors_capped():
    answer = 'Answer: [' + ', '.join(['(2.0, 0.5)'] * 50) + ', (0.5, 0.5)]'
    parsed = parse_answer(answer)
    assert parsed.rejected == 50 and len(parsed.points) == 1
    assert len(parsed.errors) == MAX_ERRORS and parsed.errors[-1].startswith('... and')


def test_points_are_read_only_and_input_types_tolerated():
    parsed = parse_answer('(0.1, 0.2)')
    with pytest.raises(ValueError):
        parsed.points[0, 0] = 0.5
    assert parse_answer(None).errors == ('empty reply',)
    assert parse_answer(b'Answer: [(0.1, 0.2)] \xff').ok
    with pytest.raises(ValueError):
        parse_answer('(1, 2)', image_size=(0, 480))


def _check_invariants(text, parsed):
    assert parsed.points.ndim == 2 and parsed.points.shape[1] == 2
    assert np.all(np.isfinite(parsed.points))
    assert np.all((parsed.points >= 0) & (parsed.points <= 1))
    assert parsed.ok == (len(parsed.points) > 0)
    assert isinstance(parsed.errors, tuple) and len(parsed.errors) <= MAX_ERRORS
    assert all(isinstance(e, str) and e for e in parsed.errors)
    assert parsed.ok or parsed.errors
    if parsed.span is not None:
        assert text[parsed.span[0]:parsed.span[1]] == parsed.answer


FRAGMENTS = ['Answer:', 'answer :', '**Answer:**', '(', ')', '[', ']', ',', ', ', ';', ' ',
             '\n', '0', '1', '0.5', '.5', '1.', '-', '+', 'e', 'E-3', '1e999', 'nan', 'inf',
             '640', '999999999999999999999999', 'and', '.', '2. Reference:', '3. Target area:',
             '4. Coordinates:', '1. Goal subtype:', '\u2212', '\u0665', '\U0001F916', '\x00']
ADVERSARIAL = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(''.join)
SIZES = st.one_of(st.none(), st.tuples(st.integers(1, 2000), st.integers(1, 2000)))


@settings(max_examples=300, deadline=None)
@given(st.text(), SIZES)
def test_never_raises_on_any_text(text, size):
    _check_invariants(text, parse_answer(text, image_size=size))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ADVERSARIAL, SIZES)
def test_never_raises_on_adversarial_text(text, size):
    _check_invariants(text, parse_answer(text, image_size=size))


UNIT = st.floats(0.0, 1.0, allow_nan=False)
POINTS = st.lists(st.tuples(UNIT, UNIT), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(POINTS, st.integers(1, 7))
def test_format_points_round_trips_to_the_written_decimals(points, decimals):
    expected = [[float(f'{v:.{decimals}f}') for v in p] for p in points]
    for text in (format_points(points, decimals), f'Answer: {format_points(points, decimals)}'):
        parsed = parse_answer(text)
        assert parsed.errors == ()
        np.testing.assert_array_equal(parsed.points, expected)


STEP_TEXT = st.text(alphabet='abcxy 0123456789.,()[]-:', min_size=1, max_size=60).filter(
    lambda s: s.strip(' .'))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(GOAL_SUBTYPES), STEP_TEXT, STEP_TEXT, POINTS, POINTS)
def test_tuples_in_the_steps_never_leak_into_the_answer(subtype, reference, area, points,
                                                        decoys):
    reference = reference + ' at ' + format_points(decoys[:1])
    area = area + ' ' + format_points(decoys)
    text = format_cor_answer(subtype, reference, area, points, reference_point=decoys[0],
                             coordinates=format_points(decoys[::-1]))
    parsed = parse_answer(text)
    expected = [[float(f'{v:.3f}') for v in p] for p in points]
    np.testing.assert_array_equal(parsed.points, expected)
    assert parsed.goal_subtype == subtype
    assert parsed.reference == text.splitlines()[1][len('2. Reference: '):-1]
    reasoning = '\n'.join(text.splitlines()[:3])
    assert not parse_answer(reasoning).ok


def test_a_1000_token_answer_keeps_only_its_answer_points():
    rng = np.random.default_rng(0)
    decoys = ' '.join(f'near ({x:.2f}, {y:.2f}) and beyond' for x, y in rng.random((60, 2)))
    points = rng.uniform(0.2, 0.6, (40, 2))
    text = format_cor_answer('object reference', f'the red mug {decoys}',
                             f'left of the mug {decoys}', points)
    assert 3500 < len(text) < 8000  # about 1,000 tokens; its parse time: scripts/bench_core.py
    np.testing.assert_allclose(parse_answer(text, image_size=SIZE).points, points, atol=5e-4)


@pytest.mark.parametrize('text', ['(' * 20000, '(1' * 10000, '[' * 5000 + ']' * 5000,
                                  'answer' + ' ' * 20000, '1. ' * 10000, '**' * 10000 + ':',
                                  '(0.5, 0.5) ' * 5000 + 'x', 'Answer: ' * 5000])
def test_pathological_text_keeps_invariants(text):
    _check_invariants(text, parse_answer(text))
