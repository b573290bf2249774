"""The image-use probe: teacher-forced losses of a real (random-init) model per image mode."""

import math
import pathlib

from trace_train.probe import main

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval' / 'sim_w2p'


def test_probe_scores_reference_replies_with_each_image_mode(tmp_path):
    from tiny_model import tiny_model_dir
    out = tmp_path / 'probe.json'
    result = main(['--model', str(tiny_model_dir()), '--data', str(DATA), '--limit', '2',
                   '--out', str(out)])
    assert result['questions'] == 2 and out.stat().st_size > 0
    assert set(result['loss']) == {'real', 'blank', 'shuffled'}
    assert all(math.isfinite(v) and v > 0 for v in result['loss'].values())
    assert result['gap_blank'] == result['loss']['blank'] - result['loss']['real']
    digits = main(['--model', str(tiny_model_dir()), '--data', str(DATA), '--limit', '1',
                   '--part', 'points', '--style', 'plain'])
    assert digits['loss']['real'] != result['loss']['real']


def test_reference_part_scores_only_the_digits_of_the_reference_step():
    from tiny_model import tiny_model_dir
    from trace_train.eval.probe import scored_spans
    reply = ('1. Goal subtype: object reference.\n2. Reference: the red mug, at (0.217, 0.568).\n'
             '3. Target area: x 0.19-0.32, y 0.45-0.55.\nAnswer: [(0.279, 0.527)]')
    assert [reply[a:b] for a, b in scored_spans(reply, 'reference')] == ['217', '568']
    assert len(scored_spans(reply, 'points')) == 8
    assert scored_spans(reply, 'reply') == [(0, len(reply))]
    result = main(['--model', str(tiny_model_dir()), '--data', str(DATA), '--limit', '1',
                   '--part', 'reference'])
    assert result['part'] == 'reference' and math.isfinite(result['loss']['real'])
