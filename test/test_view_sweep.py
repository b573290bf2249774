"""The view-sweep diagnostic: evaluate's per-question scores binned by camera view."""

import json
import pathlib

from trace_ros.core.where2place import load_questions
from trace_train.view_sweep import BINS, main

FOLDER = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval' / 'sim_w2p_random'


def test_sweep_of_ground_truth_and_baselines(tmp_path):
    questions = load_questions(str(FOLDER))
    answers = tmp_path / 'truth'
    answers.mkdir()
    # Ground truth for the first half, nothing for the rest: accuracy 0.5 overall.
    rows = [{'question_id': q['question_id'], 'category': q['category'], 'latency_s': 0.0,
             'text': q['answer'] if i % 2 == 0 else '', 'error': ''}
            for i, q in enumerate(questions)]
    (answers / 'answers.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    results = main(['--data', str(FOLDER), '--eval', str(answers), '--out', str(tmp_path)])
    assert set(results) == {'truth', 'random', 'table_centre'}
    truth = results['truth']
    assert abs(truth['accuracy'] - 0.5) < 0.01
    for key in BINS:
        bins = truth['sweep'][key]
        assert sum(b['count'] for b in bins) == len(questions), key
        answered = sum(b['count'] * b['accuracy'] for b in bins if b['count'])
        assert abs(answered - len(questions) / 2) < 1, key
    assert 0.0 < results['random']['accuracy'] < 0.3
    assert results['table_centre']['parse_failure_rate'] == 0.0
    assert (tmp_path / 'view_sweep.png').stat().st_size > 0
    saved = json.loads((tmp_path / 'view_sweep.json').read_text())
    assert saved['truth']['sweep']['pitch_deg'] == truth['sweep']['pitch_deg']
