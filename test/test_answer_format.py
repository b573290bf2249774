"""The answer-format owner: every part round-trips, the grammar is exact, trace-tiny follows it."""

import pathlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
from PIL import Image
import pytest
from trace_ros.core import answer_format as fmt
from trace_ros.core.parsing import parse_answer
from trace_ros.core.prompts import build_prompt, COR_SUFFIX
from trace_ros.core.where2place import load_questions

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / 'data' / 'eval' / 'sim_w2p'
MODEL = ROOT / 'models' / 'trace-tiny'
CANONICAL = (
    '1. Goal subtype: object reference.\n'
    '2. Reference: the red mug, at (0.420, 0.550).\n'
    '3. Target area: the free table surface left of the red mug, x 0.20-0.38, y 0.50-0.62.\n'
    '4. Coordinates: points sampled inside the target area.\n'
    'Answer: [(0.310, 0.560), (0.290, 0.600)]')

unit = st.floats(0.0, 1.0)
points = st.tuples(unit, unit)
decimals = st.integers(1, 6)
words = st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters=':'),
                min_size=1, max_size=60).filter(lambda t: t.strip(' .'))


def close(read, written, places):
    """Read-back values equal the written ones to the written decimals (never as text)."""
    return np.allclose(read, written, rtol=0.0, atol=0.5 * 10.0 ** -places + 1e-9)


@st.composite
def boxes(draw):
    x0, x1 = sorted(draw(st.tuples(unit, unit)))
    y0, y1 = sorted(draw(st.tuples(unit, unit)))
    return x0, y0, x1, y1


@given(point=points, places=decimals)
def test_a_point_round_trips(point, places):
    text = fmt.format_point(point, places)
    assert close(fmt.read_point(text), point, places)
    assert close(fmt.read_point(fmt.format_reference('the mug', point, places)), point, places)


@given(values=st.lists(points, min_size=1, max_size=12), places=decimals)
def test_a_point_list_round_trips_and_matches_the_plain_grammar(values, places):
    text = fmt.format_points(values, places)
    assert close(fmt.read_points(text), values, places)
    assert fmt.matches_grammar(text, 'plain', max_points=12, decimals=places)
    assert not fmt.matches_grammar(text, 'plain', max_points=12, decimals=places + 1)
    coordinates = fmt.answer_coordinates(text)
    assert [value for _, value in coordinates] == [
        value for point in fmt.read_points(text) for value in point if value < 1.0]
    assert all(text[a - 2:a] == '0.' and text[a:b].isdigit() for (a, b), _ in coordinates)


@given(box=boxes(), centre=points)
def test_the_target_area_box_and_centre_round_trip(box, centre):
    assert close(fmt.read_target_box('the area, ' + fmt.format_box(box)), box, fmt.AREA_DECIMALS)
    area = 'the area' + fmt.CENTRE_AT + fmt.format_point(centre)
    assert close(fmt.read_target_centre(area), centre, fmt.POINT_DECIMALS)
    assert fmt.read_target_centre('the area, ' + fmt.format_box(box)) is None
    assert fmt.read_target_box(area) is None


@settings(max_examples=150)
@given(subtype=st.sampled_from(fmt.GOAL_SUBTYPES), reference=words, area=words,
       coordinates=words, reference_point=points, box=boxes(), centre=points,
       use_box=st.booleans(), answer=st.lists(points, min_size=1, max_size=fmt.MAX_POINTS),
       places=st.integers(2, 4))
def test_a_cor_answer_round_trips_and_matches_the_grammar(subtype, reference, area, coordinates,
                                                          reference_point, box, centre,
                                                          use_box, answer, places):
    area_part = {'target_box': box} if use_box else {'target_centre': centre}
    text = fmt.format_cor_answer(subtype, reference, area, answer, coordinates=coordinates,
                                 reference_point=reference_point, decimals=places, **area_part)
    assert fmt.matches_grammar(text, decimals=places)
    assert re.fullmatch(fmt.reply_regex('cor', decimals=places), text)
    read = fmt.read_cor_answer(text, decimals=places)
    assert read.goal_subtype == subtype
    assert (read.reference, read.target_area, read.coordinates) == tuple(
        ' '.join(t.split()).rstrip('.').strip() for t in (reference, area, coordinates))
    assert close(read.reference_point, reference_point, places)
    assert close(read.points, answer, places)
    if use_box:
        assert read.target_centre is None and close(read.target_box, box, fmt.AREA_DECIMALS)
    else:
        assert read.target_box is None and close(read.target_centre, centre, places)
    parsed = parse_answer(text)
    assert parsed.goal_subtype == subtype and parsed.errors == ()
    assert close(parsed.points, answer, places)
    grounded = fmt.grounded_point_spans(text)
    written = [reference_point] + ([] if use_box else [centre])
    assert [text[a:b] for (a, b), _ in grounded] == [fmt.format_point(p, places) for p in written]
    assert close([point for _, point in grounded], written, places)


def test_the_canonical_reply_reads_back_exactly():
    read = fmt.read_cor_answer(CANONICAL)
    assert read == fmt.CorAnswer(
        fmt.GOAL_OBJECT_REFERENCE, 'the red mug', 'the free table surface left of the red mug',
        'points sampled inside the target area', ((0.31, 0.56), (0.29, 0.6)),
        reference_point=(0.42, 0.55), target_box=(0.2, 0.5, 0.38, 0.62))
    assert [point for _, point in fmt.grounded_point_spans(CANONICAL)] == [(0.42, 0.55)]
    assert [value for _, value in fmt.answer_coordinates(CANONICAL)] == [0.31, 0.56, 0.29, 0.6]
    two = CANONICAL.replace('the red mug, at', 'the red mug, at (0.100, 0.200) and the bowl, at')
    assert fmt.read_cor_answer(two).reference == 'the red mug, at (0.100, 0.200) and the bowl'


@pytest.mark.parametrize('old, new', [
    ('object reference', 'placement'), ('2. Reference', '2. Referent'),
    (', at (0.420, 0.550)', ''), ('(0.420, 0.550)', '(0.42, 0.55)'),
    ('(0.420, 0.550)', '(1.420, 0.550)'), ('x 0.20-0.38', 'x 0.200-0.380'),
    ('x 0.20-0.38, y 0.50-0.62', 'centred at (0.5, 0.5)'), ('Answer:', 'answer:'),
    ('\nAnswer', ' Answer'), ('[(0.310, 0.560), (0.290, 0.600)]', '[]'),
    ('[(0.310, 0.560), (0.290, 0.600)]', '[(310, 560)]'), ('area.\n', 'area\n'),
    ('4. Coordinates: points sampled inside the target area.\n', ''),
    ('(0.290, 0.600)]', '(0.290, 0.600)]\n'), ('(0.290, 0.600)]', '(0.290, 0.600), ]'),
    ('the red mug, at', 'the red mug,\nat')])
def test_the_grammar_rejects_malformed_replies(old, new):
    assert fmt.matches_grammar(CANONICAL)
    bad = CANONICAL.replace(old, new, 1)
    assert bad != CANONICAL
    assert not fmt.matches_grammar(bad)
    assert fmt.read_cor_answer(bad) is None


def test_the_grammar_is_bounded_and_engine_portable():
    for style in ('cor', 'plain'):
        regex = fmt.reply_regex(style, max_points=3)
        assert '(?' not in regex and not re.search(r'\\[1-9]', regex)  # no lookaround/backref
        assert not re.search(r'(?<!\\)[*+]|\{\d*,\}', regex)  # every repetition bounded
    answer = fmt.format_points([(0.5, 0.5)] * 3)
    assert fmt.matches_grammar(answer, 'plain', max_points=3)
    assert not fmt.matches_grammar(fmt.format_points([(0.5, 0.5)] * 4), 'plain', max_points=3)
    long_area = 'a' * (fmt.MAX_STEP_CHARS[1] + 1)
    assert not fmt.matches_grammar(CANONICAL.replace('the free table surface', long_area))
    assert not fmt.matches_grammar(CANONICAL.replace('the free table', 'the fr\u00e9e table'))
    with pytest.raises(ValueError):
        fmt.reply_regex('json')


@pytest.mark.parametrize('limits', [fmt.MAX_STEP_CHARS, 7, (1, 2, 3)])
@pytest.mark.parametrize('points, places', [(fmt.MAX_POINTS, fmt.POINT_DECIMALS), (3, 2)])
def test_the_longest_reply_the_grammar_allows_is_reply_max_chars(limits, points, places):
    reference, target, coordinates = (limits,) * 3 if isinstance(limits, int) else limits
    longest = max((fmt.format_cor_answer(
        fmt.GOAL_OBJECT_REFERENCE, 'r' * reference, 't' * target, [(1.0, 1.0)] * points,
        coordinates='c' * coordinates, reference_point=(1.0, 1.0), decimals=places, **area)
        for area in ({'target_centre': (1.0, 1.0)}, {'target_box': (1.0, 1.0, 1.0, 1.0)})),
        key=len)
    assert re.fullmatch(fmt.reply_regex('cor', points, places, limits), longest)
    assert len(longest) == fmt.reply_max_chars('cor', points, places, limits)
    for grown in (longest.replace('r,', 'rr,'), longest.replace('t,', 'tt,'),
                  longest.replace('c.', 'cc.'), longest[:-1] + ', (1.0, 1.0)]'):
        assert not re.fullmatch(fmt.reply_regex('cor', points, places, limits), grown)
    plain = fmt.format_points([(1.0, 1.0)] * points, places)
    assert len(plain) == fmt.reply_max_chars('plain', points, places)


def test_prompts_and_chat_turns_are_unchanged():
    assert COR_SUFFIX == (
        'Reason step by step, then answer, in exactly this format:\n'
        '1. Goal subtype: object reference or free space.\n'
        '2. Reference: the reference object or surface, at (x, y).\n'
        '3. Target area: where the item should go, x x0-x1, y y0-y1.\n'
        '4. Coordinates: how the points are chosen inside the target area.\n'
        'Answer: [(x1, y1), (x2, y2), ...]\n'
        'All coordinates are between 0 and 1, normalized to the image width and height.')
    assert fmt.format_locate_answer('red mug', (0.4204, 0.55)) == (
        'The red mug is at (0.420, 0.550).')
    assert fmt.format_references(['the red mug', 'the bowl'], [(0.1, 0.2), (0.3, 0.45)]) == (
        'the red mug, at (0.100, 0.200) and the bowl, at (0.300, 0.450)')
    assert fmt.user_turn('hi') == {'role': 'user', 'content': [
        {'type': 'image'}, {'type': 'text', 'text': 'hi'}]}
    assert fmt.user_turn('hi', image_url='data:x')['content'][0] == {
        'type': 'image_url', 'image_url': {'url': 'data:x'}}
    assert fmt.llava_prompt(fmt.llava_human_value('hi')) == 'hi'


def test_the_sequence_builder_tokenizes_as_the_hand_written_chatml_did():
    from experiments.grounding.locate import SequenceBuilder
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    qa = [('Where is the red mug?', '[(0.42, 0.55)]'),
          ('Where is the blue bowl?', 'The blue bowl is at (0.100, 0.900).')]

    def ids(text):
        return tokenizer(text, add_special_tokens=False)['input_ids']

    for question_first in (False, True):
        expected = []
        for turn, (q, a) in enumerate(qa):  # the former hand-written ChatML rendering
            image = [tokenizer.convert_tokens_to_ids('<image>')] * 4 + ids('\n') if turn == 0 \
                else []
            parts = ids(q) + image if question_first else image + ids(q)
            expected += (ids('<|im_start|>user\n') + parts
                         + ids('<|im_end|>\n<|im_start|>assistant\n') + ids(a + '<|im_end|>')
                         + ids('\n'))
        spans = []
        got, labels = SequenceBuilder(tokenizer, 4, question_first).build(qa, spans)
        assert got == expected
        assert [tokenizer.decode(got[a:b]) for a, b in spans] == [
            a + '<|im_end|>' for _, a in qa]
        assert [i for i, label in enumerate(labels) if label != -100] == [
            i for a, b in spans for i in range(a, b)]


def test_trace_tiny_replies_on_sim_w2p_match_the_grammar():
    from trace_ros.backends import make_backend
    questions = load_questions(str(DATA))[::5]
    with make_backend('transformers', model=str(MODEL), device='cpu',
                      max_new_tokens=256) as backend:
        replies = [(q['question_id'], backend.generate(
            np.asarray(Image.open(DATA / 'images' / q['image']).convert('RGB')),
            build_prompt(q['text'])).text) for q in questions]
    off = [(qid, text) for qid, text in replies if not fmt.matches_grammar(text)]
    assert not off, f'{len(off)} of {len(replies)} replies off the grammar: {off}'
