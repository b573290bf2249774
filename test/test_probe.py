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
