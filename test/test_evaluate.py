"""The evaluation CLI on the committed sim Where2Place set: its metric is the core metric."""

import json
import pathlib

import numpy as np
import pytest
from trace_ros.core.where2place import load_questions, score_folder
from trace_train.eval.evaluate import (bootstrap_interval, main, probe_image,
                                       reference_localization, summarize)

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval' / 'sim_w2p'


def test_cli_scores_a_real_model_with_the_core_metric(tmp_path):
    from tiny_model import tiny_model_dir
    metrics = main(['--data', str(DATA), '--out', str(tmp_path), '--model',
                    str(tiny_model_dir()), '--device', 'cpu', '--limit', '3',
                    '--max-new-tokens', '16'])
    rows = [json.loads(line) for line in (tmp_path / 'answers.jsonl').read_text().splitlines()]
    assert len(rows) == 3 and all(r['latency_s'] > 0 for r in rows)
    core = score_folder(str(DATA), {r['question_id']: r['text'] for r in rows}, limit=3)
    assert metrics['accuracy'] == core.accuracy
    assert metrics['parse_failure_rate'] == len(core.parse_failures) / 3
    assert (tmp_path / 'summary.png').stat().st_size > 0
    assert (tmp_path / 'overlays.png').stat().st_size > 0
    assert json.loads((tmp_path / 'metrics.json').read_text())['num_questions'] == 3


def test_ground_truth_answers_score_one_and_official_mode_follows_the_official_scorer():
    questions = [json.loads(line) for line in
                 (DATA / 'point_questions.jsonl').read_text().splitlines()][:5]
    rows = [{'question_id': q['question_id'], 'category': q['category'], 'latency_s': 0.1,
             'text': q['cor']} for q in questions]
    default = summarize(str(DATA), rows, limit=5)
    assert default['accuracy'] == 1.0 and default['parse_failure_rate'] == 0.0
    official = summarize(str(DATA), rows, official=True, limit=5)
    core = score_folder(str(DATA), {r['question_id']: r['text'] for r in rows}, official=True,
                        limit=5)
    assert official['official'] and official['accuracy'] == core.accuracy


def test_reference_localization_measures_the_cor_reference_point():
    questions = [q for q in load_questions(str(DATA))
                 if q['goal_subtype'] == 'object reference'][:3]
    x, y = questions[1]['reference_points'][0]
    rows = [{'question_id': questions[0]['question_id'], 'text': questions[0]['cor']},
            {'question_id': questions[1]['question_id'],
             'text': f'2. Reference: the mug, at ({x + 0.1:.3f}, {y:.3f}).\nAnswer: [(0.5, 0.5)]'},
            {'question_id': questions[2]['question_id'], 'text': 'Answer: [(0.5, 0.5)]'}]
    result = reference_localization(str(DATA), rows)
    assert result['questions'] == 3 and result['with_point'] == 2
    assert result['within_0.05'] == 1 / 3
    assert abs(result['median_distance'] - 0.05) < 0.002  # the mean of about 0 and 0.1


def test_probe_images_are_blank_or_from_another_scene():
    questions = load_questions(str(DATA))
    real = probe_image(str(DATA), questions, 0, 'real')
    blank = probe_image(str(DATA), questions, 0, 'blank')
    shuffled = probe_image(str(DATA), questions, 0, 'shuffled')
    assert blank.shape == real.shape and len(np.unique(blank.reshape(-1, 3), axis=0)) == 1
    assert questions[len(questions) // 2]['image'] != questions[0]['image']
    assert shuffled.shape == real.shape and not np.array_equal(shuffled, real)


def test_bootstrap_interval_covers_the_mean_and_pairs_differences():
    scores = [0.0, 1.0] * 50
    low, high = bootstrap_interval(scores)
    assert 0.3 < low < 0.5 < high < 0.7
    assert bootstrap_interval(scores, scores) == [0.0, 0.0]
    low, high = bootstrap_interval([1.0] * 100, [0.0] * 100)
    assert low == high == 1.0
    with pytest.raises(ValueError):
        bootstrap_interval([1.0], [1.0, 0.0])
