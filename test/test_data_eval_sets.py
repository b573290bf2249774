"""
The committed simulated Where2Place sets: layout, ground truth scoring 1.0, regeneration.

``python -m trace_train.data.make_eval_sets`` rewrites them; the regeneration test redraws
the first questions of each set and compares them with what is committed.
"""

import pathlib

from approx_tree import assert_tree_close
import numpy as np
from PIL import Image
import pytest
from trace_ros.core.where2place import load_mask, load_questions, score_folder
from trace_train.data.hf import load_where2place
from trace_train.data.make_eval_sets import (EVAL_SETS, IMAGE_QUALITY, SET_IMAGE_QUALITY,
                                             write_where2place)
from trace_train.data.relations import HARD_RELATIONS, TRAIN_RELATIONS
from trace_train.data.samples import DataConfig, scene_seed

ROOT = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'eval'
SETS = {'sim_w2p': (100, TRAIN_RELATIONS), 'sim_w2p_hard': (50, HARD_RELATIONS),
        'sim_w2p_random': (156, TRAIN_RELATIONS)}


@pytest.mark.parametrize('name', list(SETS))
def test_layout_relations_and_size(name):
    count, relations = SETS[name]
    folder = ROOT / name
    questions = load_questions(str(folder))
    assert [q['question_id'] for q in questions] == list(range(count))
    assert {q['category'] for q in questions} == set(relations)
    for question in questions:
        assert (folder / 'images' / question['image']).is_file()
        assert (folder / 'masks' / question['image']).is_file()
        assert question['text'].startswith(question['instruction'])
        assert 'Your answer should be formatted' in question['text']
    size = sum(p.stat().st_size for p in folder.rglob('*') if p.is_file())
    assert size < 4.5e6


# RoboPoint's scorer scales answers to 640x480, the size of every Where2Place image: the
# randomized set's mixed sizes are scored with the core metric only.
@pytest.mark.parametrize('name,official', [(name, official) for name in SETS
                                           for official in (False, True)
                                           if not (official and name == 'sim_w2p_random')])
def test_ground_truth_answers_score_one(name, official):
    folder = ROOT / name
    questions = load_questions(str(folder))
    # The official scorer also counts the reasoning's "at (x, y)" as points: plain only.
    for key in ('answer',) if official else ('cor', 'answer'):
        answers = {q['question_id']: q[key] for q in questions}
        result = score_folder(str(folder), answers, official=official)
        assert result.accuracy > (0.995 if official else 0.99999), (key, result.accuracy)
        assert not result.parse_failures and not result.missing


@pytest.mark.parametrize('name', list(SETS))
def test_first_questions_regenerate(name, tmp_path):
    config, _ = EVAL_SETS[name]
    folder = ROOT / name
    committed = load_questions(str(folder))[:2]
    write_where2place(tmp_path, config, 2, SET_IMAGE_QUALITY.get(name, IMAGE_QUALITY))
    regenerated = load_questions(str(tmp_path))
    for old, new in zip(committed, regenerated):
        for key in ('text', 'relation', 'held', 'references'):
            assert old[key] == new[key], key
        # Computed numbers, rounded to 3, 4 and 5 decimals: equal up to the last digit (another
        # CPU may round a last bit the other way), never compared as text.
        for key, tolerance in (('reference_points', 1.5e-3), ('scene', 1.5e-4),
                               ('region', 1.5e-5)):
            assert_tree_close(old[key], new[key], tolerance, key)
        mask = load_mask(str(folder / 'masks' / old['image']))
        again = load_mask(str(tmp_path / 'masks' / new['image']))
        assert (mask & again).sum() / (mask | again).sum() > 0.99
        points = np.array(old['points'])
        height, width = again.shape
        rows, cols = (points[:, 1] * height).astype(int), (points[:, 0] * width).astype(int)
        assert again[rows, cols].all()
        image = np.asarray(Image.open(folder / 'images' / old['image']), float)
        image -= np.asarray(Image.open(tmp_path / 'images' / new['image']))
        assert np.abs(image).mean() < 2


def test_loads_with_hugging_face_datasets():
    dataset = load_where2place(ROOT / 'sim_w2p_hard')
    assert len(dataset) == 50
    row = dataset[0]
    assert row['image'].size == (640, 480) and row['mask'].size == (640, 480)
    assert row['category'] in HARD_RELATIONS and row['question_id'] == 0


def test_validation_set_is_not_committed_and_uses_other_scenes(tmp_path):
    from trace_train.data.make_eval_sets import COMMITTED
    assert set(COMMITTED) == set(SETS) and 'sim_w2p_val' in EVAL_SETS
    config, count = EVAL_SETS['sim_w2p_val']
    assert count == 300 and not (ROOT / 'sim_w2p_val').exists()
    questions = write_where2place(tmp_path, config, 3)
    committed = {q['scene_seed'] for q in load_questions(str(ROOT / 'sim_w2p'))}
    assert len(questions) == 3 and not {q['scene_seed'] for q in questions} & committed


def test_randomized_set_holds_unseen_scenes_and_views_of_every_kind():
    questions = load_questions(str(ROOT / 'sim_w2p_random'))
    train = DataConfig(world='random')  # what generate --randomize draws
    seen = {scene_seed(train, i) for i in range(20000)}
    assert not seen & {q['scene_seed'] for q in questions}
    views = [q['view'] for q in questions]
    for key in ('yaw_deg', 'pitch_deg', 'distance', 'roll_deg', 'fovy_deg', 'native_width',
                'native_height'):
        assert all(key in v for v in views), key
    yaws = np.array([v['yaw_deg'] for v in views])
    assert (np.abs(yaws) > 135).sum() >= 10 and (np.abs(yaws) < 45).sum() >= 10
    assert len({(q['width'], q['height']) for q in questions}) >= 5
    assert max(max(q['width'], q['height']) for q in questions) <= 480
    for question in questions[:10]:
        camera = question['scene']['camera']
        assert camera['fovy_deg'] == question['view']['fovy_deg']
        assert (camera['width'], camera['height']) == (question['width'], question['height'])
