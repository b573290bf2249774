"""The reasoning-chain diagnostic: true CoR steps given, the model writes the rest."""

import pathlib

import pytest
from trace_ros.core.where2place import load_mask, load_questions, mask_path, score_answer
from trace_train.eval.chain import box_iou, given_steps, main, target_box, target_centre

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval' / 'sim_w2p'
COR = ('1. Goal subtype: object reference.\n2. Reference: the red mug, at (0.217, 0.568).\n'
       '3. Target area: free table, behind the red mug, x 0.19-0.32, y 0.45-0.55.\n'
       '4. Coordinates: 1 point.\nAnswer: [(0.279, 0.527)]')


def test_target_box_given_steps_and_iou():
    assert target_box(COR) == (0.19, 0.45, 0.32, 0.55)
    assert target_box('3. Target area: the empty left part.\nAnswer: [(0.2, 0.3)]') is None
    assert target_centre(COR) is None
    assert target_centre(COR.replace('x 0.19-0.32, y 0.45-0.55', 'centred at (0.25, 0.5)')) \
        == (0.25, 0.5)
    assert given_steps(COR, 0) == ''
    assert given_steps(COR, 2) == COR.split('\n', 2)[0] + '\n' + COR.split('\n')[1] + '\n'
    with pytest.raises(ValueError):
        given_steps(COR, 5)
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert box_iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == pytest.approx(0.5)


def test_chain_runs_a_real_model_with_the_true_steps_given(tmp_path):
    from tiny_model import tiny_model_dir
    result = main(['--model', str(tiny_model_dir()), '--data', str(DATA), '--out',
                   str(tmp_path), '--limit', '2', '--given', '0', '3',
                   '--max-new-tokens', '6'])
    assert (tmp_path / 'chain.json').stat().st_size > 0
    assert (tmp_path / 'chain.png').stat().st_size > 0
    questions = load_questions(str(DATA))[:2]
    for steps in (0, 3):
        rows = result[steps]['answers']
        assert len(rows) == 2
        for index, (question, row) in enumerate(zip(questions, rows)):
            assert row['text'].startswith(given_steps(question['cor'], steps))
            mask = load_mask(mask_path(str(DATA), question, index))
            assert row['score'] == score_answer(row['text'], mask).score
    assert result[3]['object_reference_box_iou'] is None
