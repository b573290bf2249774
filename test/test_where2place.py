"""Where2Place scoring on synthetic masks: default mode, official mode and their differences."""

import json
import math

import numpy as np
from PIL import Image
import pytest
from trace_ros.core.where2place import (
    load_answers, load_mask, official_text2pts, score_answer, score_folder)

LEFT_HALF = np.zeros((480, 640), dtype=np.uint8)
LEFT_HALF[:, :320] = 255
RAISES_OFFICIALLY = 'Answer: [(1, 0.1, 0.5, 0.5)]'  # int x0, float x1: a float slice index


@pytest.mark.parametrize('official', [False, True])
@pytest.mark.parametrize('text, expected', [
    ('Answer: [(0.25, 0.5), (0.75, 0.5)]', 0.5),
    ('Answer: [(0.1, 0.1), (0.2, 0.9), (0.4, 0.5), (0.9, 0.5)]', 0.75),
    ('[(0.6, 0.5)]', 0.0),
    ('Answer: [(0.25, 0.5), (1.5, 0.5)]', 0.5),  # default: rejected tuple = miss
    ('Answer: [(100, 200), (500, 200)]', 0.5),  # integer pixels
    ('Answer: [(0.0, 0.0, 0.25, 1.0)]', 1.0),  # box inside the mask
    ('Answer: [(0.25, 0.0, 0.75, 1.0)]', 0.5),  # box across the border
])
def test_known_fractions(text, expected, official):
    tolerance = 0.03 if '0.75, 1.0)' in text and not official else 1e-12  # subsampled box
    score = score_answer(text, LEFT_HALF, official=official).score
    assert score == pytest.approx(expected, abs=tolerance)


def test_reasoning_tuples_count_only_officially():
    text = ('2. Reference: the mug, at (0.25, 0.5).\n3. Target area: right of the mug.\n'
            'Answer: [(0.75, 0.5)]')
    assert score_answer(text, LEFT_HALF).score == 0.0
    assert score_answer(text, LEFT_HALF, official=True).score == 0.5


def test_image_size_comes_from_the_mask_not_640x480():
    mask = np.zeros((100, 200), dtype=bool)
    mask[50:, 100:] = True
    text = 'Answer: [(0.75, 0.75)]'
    assert score_answer(text, mask).score == 1.0
    assert score_answer(text, mask, official=True).score == 0.0  # x = 480 is off the mask


def test_the_far_edge_is_on_the_image_by_default():
    mask = np.ones((480, 640), dtype=bool)
    assert score_answer('(1.0, 1.0)', mask).score == 1.0
    assert score_answer('(1.0, 1.0)', mask, official=True).score == 0.0


def test_unparsable_answers_score_zero_or_are_skipped():
    default = score_answer('I do not know.', LEFT_HALF)
    assert (default.score, default.parsed) == (0.0, False) and default.errors
    official = score_answer('I do not know.', LEFT_HALF, official=True)
    assert (official.score, official.parsed) == (0.0, True)  # no tuples: 0, still counted
    skipped = score_answer(RAISES_OFFICIALLY, LEFT_HALF, official=True)
    assert math.isnan(skipped.score) and not skipped.parsed
    overflow = score_answer('(' + '9' * 400 + '.0, 0.5)', LEFT_HALF, official=True)
    assert math.isnan(overflow.score)
    crash = score_answer('(1, 99999999999999999999999)', LEFT_HALF, official=True)
    assert math.isnan(crash.score) and 'crash' in crash.errors[0]


def test_official_text2pts_quirks():
    np.testing.assert_array_equal(official_text2pts('(0.5, 1)'), [(320, 480)])
    np.testing.assert_array_equal(official_text2pts('(1, 0.5)'), [(640, 240)])
    np.testing.assert_array_equal(official_text2pts('(-0.001, 0.5)'), [(0, 240)])
    np.testing.assert_array_equal(official_text2pts('(1,2,3) (4) (5e-1, 1) ( 1, 2)'),
                                  np.zeros((0,)))
    box = official_text2pts('(2, 3, 4, 5)')
    np.testing.assert_array_equal(box, [(2, 3), (3, 3), (2, 4), (3, 4)])
    assert len(official_text2pts('(0.0, 0.0, 0.5, 0.5)')) == 320 * 240


def _jpeg_mask(path, border=320) -> None:
    mask = np.zeros((480, 640), dtype=np.uint8)
    mask[:, :border] = 255
    Image.fromarray(mask).save(path, quality=75)


def test_jpeg_masks_are_weights_officially_and_binary_by_default(tmp_path):
    path = tmp_path / 'mask.jpg'
    _jpeg_mask(path, border=324)  # not on an 8-pixel JPEG block edge: ringing
    weights = load_mask(str(path), official=True)
    binary = load_mask(str(path))
    assert binary.dtype == bool and set(np.unique(binary)) == {False, True}
    assert np.array_equal(binary, np.asarray(Image.open(path)) >= 128)
    blurred = [c for c in range(316, 332) if 0 < weights[240, c] < 1]  # e.g. 254 / 255
    assert blurred
    for column in blurred:
        text = f'Answer: [({(column + 0.5) / 640:.6f}, 0.5)]'
        assert score_answer(text, weights, official=True).score == weights[240, column]
        assert score_answer(text, binary).score == float(binary[240, column])
        assert score_answer(text, np.asarray(Image.open(path))).score == binary[240, column]


def _folder(tmp_path, n=3):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'masks').mkdir()
    with open(tmp_path / 'point_questions.jsonl', 'w') as file:
        for i in range(n):
            Image.new('RGB', (640, 480)).save(tmp_path / 'images' / f'{i:02d}.jpg')
            _jpeg_mask(tmp_path / 'masks' / f'{i:02d}.jpg')
            file.write(json.dumps({'question_id': i, 'image': f'{i:02d}.jpg',
                                   'text': 'Place it left.', 'category': 'seen'}) + '\n')
    return str(tmp_path)


def test_folder_scoring_default_and_official(tmp_path):
    folder = _folder(tmp_path)
    answers = {0: 'Answer: [(0.25, 0.5)]', 1: 'no idea', 2: RAISES_OFFICIALLY}
    default = score_folder(folder, answers)
    assert default.scores == {'0': 1.0, '1': 0.0, '2': 0.0}
    assert default.accuracy == pytest.approx(1 / 3)
    assert default.parse_failures == ('1', '2') and default.parse_failure_rate == 2 / 3
    official = score_folder(folder, answers, official=True)
    assert official.scores == pytest.approx({'0': 1.0, '1': 0.0}, abs=0.02)
    assert official.parse_failures == ('2',) and official.num_questions == 3
    assert official.accuracy == pytest.approx(0.5, abs=0.01)
    limited = score_folder(folder, answers, official=True, limit=1)
    assert limited.num_questions == 1 and limited.accuracy == pytest.approx(1.0, abs=0.02)


def test_missing_answers(tmp_path):
    folder = _folder(tmp_path, n=2)
    result = score_folder(folder, {'0': 'Answer: [(0.25, 0.5)]'})
    assert result.missing == ('1',) and result.scores['1'] == 0.0
    assert result.parse_failures == () and result.accuracy == 0.5
    with pytest.raises(ValueError):
        score_folder(folder, {'0': 'Answer: [(0.25, 0.5)]'}, official=True)


def test_masks_named_after_images_and_png(tmp_path):
    folder = _folder(tmp_path, n=1)
    (tmp_path / 'masks' / '00.jpg').unlink()
    Image.fromarray(255 - LEFT_HALF).save(tmp_path / 'masks' / '00.png')
    assert score_folder(folder, {'0': 'Answer: [(0.75, 0.5)]'}).accuracy == 1.0
    with pytest.raises(FileNotFoundError):
        score_folder(folder, {'0': '(0.5, 0.5)'}, official=True)


def test_load_answers(tmp_path):
    path = tmp_path / 'answers.jsonl'
    path.write_text('{"question_id": 7, "text": "(0.1, 0.2)", "answer_id": "x"}\n\n')
    assert load_answers(str(path)) == {'7': '(0.1, 0.2)'}


def test_masks_must_be_single_channel():
    with pytest.raises(ValueError):
        score_answer('(0.5, 0.5)', np.zeros((4, 4, 3), dtype=np.uint8))
