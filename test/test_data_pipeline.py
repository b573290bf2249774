"""
The dataset generator end to end: layout, conversations, determinism, resume, loading.

A small split (5 scenes at 224x224, two worker processes, chunks of two scenes) is
generated once per module; others are compared with it.
"""

import json
import shutil

import numpy as np
from PIL import Image
import pytest
from trace_ros.core.parsing import parse_answer
from trace_train.data.generate import generate, main, OutputOptions
from trace_train.data.hf import load_llava, load_samples
from trace_train.data.samples import DataConfig, scene_seed

CONFIG = DataConfig(width=224, height=224, questions_per_scene=3, locate_per_scene=2)
SCENES = 5


@pytest.fixture(scope='module')
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp('data') / 'a'
    stats = generate(CONFIG, out, SCENES, workers=2, chunk_size=2,
                     options=OutputOptions(dense=True), progress=False)
    return out, stats


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_layout_and_report(split):
    out, stats = split
    records = read_jsonl(out / 'samples.jsonl')
    assert len(records) == stats['samples'] == SCENES * 5 - stats['unfilled_questions']
    assert len(list((out / 'images').glob('*.jpg'))) == SCENES
    assert len(list((out / 'masks').glob('*.png'))) == len(records)
    assert len(list((out / 'dense').glob('*.png'))) == SCENES
    for name in ('stats.json', 'stats.png', 'contact_sheet.jpg', 'config.json'):
        assert (out / name).stat().st_size > 0
    assert stats['kinds'] == {'placement': 3 * SCENES - stats['unfilled_questions'],
                              'locate': 2 * SCENES}
    assert 0 <= stats['rejection_rate'] < 1 and stats['run']['samples_per_s'] > 0
    assert Image.open(out / records[0]['image']).size == (224, 224)
    for record in records:
        mask = np.array(Image.open(out / record['mask'])) >= 128
        points = np.array(record['points'])
        assert mask[(points[:, 1] * 224).astype(int), (points[:, 0] * 224).astype(int)].all()


def test_conversations_with_and_without_reasoning(split):
    out, _ = split
    records = {r['id']: r for r in read_jsonl(out / 'samples.jsonl')}
    cor = json.loads((out / 'llava_cor.json').read_text())
    plain = json.loads((out / 'llava_plain.json').read_text())
    assert [r['id'] for r in cor] == [r['id'] for r in plain] == list(records)
    for with_cor, without in zip(cor, plain):
        record = records[with_cor['id']]
        human, gpt = with_cor['conversations']
        assert (human['from'], gpt['from']) == ('human', 'gpt')
        assert human['value'].startswith('<image>\n') and with_cor['image'] == record['image']
        points = parse_answer(gpt['value']).points
        np.testing.assert_array_equal(points, parse_answer(without['conversations'][1]['value'])
                                      .points)
        if record['kind'] == 'placement':
            assert record['instruction'] in human['value'] and 'step by step' in human['value']
            assert gpt['value'] == record['cor'] and gpt['value'].startswith('1. Goal subtype:')
            assert without['conversations'][1]['value'] == record['answer']
            assert 'Your answer should be formatted' in without['conversations'][0]['value']
        else:
            assert gpt['value'].startswith('The ') and ' is at (' in gpt['value']
            assert without == with_cor


def test_dense_labels_name_the_objects(split):
    out, _ = split
    for record in read_jsonl(out / 'samples.jsonl'):
        if record['kind'] != 'locate':
            continue
        labels = np.array(Image.open(out / record['dense']))
        meaning = json.loads((out / record['dense']).with_suffix('.json').read_text())['labels']
        (x, y), = record['points']
        label = labels[int(y * 224), int(x * 224)]
        assert meaning[str(label)]['name'] == record['references'][0]
        assert meaning[str(label)]['pixels'] == (labels == label).sum()


def test_same_samples_with_any_number_of_workers_and_after_resuming(split, tmp_path):
    out, _ = split
    generate(CONFIG, tmp_path / 'b', SCENES, workers=1, chunk_size=SCENES,
             options=OutputOptions(dense=True), report=False, progress=False)
    expected = (out / 'samples.jsonl').read_text()
    assert (tmp_path / 'b' / 'samples.jsonl').read_text() == expected
    for image in (out / 'images').glob('*.jpg'):
        assert (tmp_path / 'b' / 'images' / image.name).read_bytes() == image.read_bytes()
    resumed = tmp_path / 'c'
    shutil.copytree(out, resumed)
    (resumed / 'chunks' / 'chunk_00001.json').unlink()
    stats = generate(CONFIG, resumed, SCENES, workers=1, chunk_size=2,
                     options=OutputOptions(dense=True), progress=False)
    assert stats['run']['scenes'] == 2
    assert (resumed / 'samples.jsonl').read_text() == expected
    with pytest.raises(ValueError, match='different configuration'):
        generate(CONFIG, resumed, SCENES + 1, progress=False)


def test_command_line_and_hugging_face_loading(tmp_path, capsys):
    main(['--out', str(tmp_path), '--scenes', '2', '--workers', '1', '--size', '160', '120',
          '--questions', '2', '--locate', '1', '--relations', 'near', 'on', 'empty area'])
    assert 'samples/s' in capsys.readouterr().out
    records = read_jsonl(tmp_path / 'samples.jsonl')
    assert {r['relation'] for r in records} <= {'near', 'on', 'empty area', 'locate'}
    dataset = load_llava(tmp_path, 'plain')
    assert len(dataset) == len(records) and dataset[0]['image'].size == (160, 120)
    assert dataset[0]['conversations'][0]['from'] == 'human'
    samples = load_samples(tmp_path)
    assert samples[0]['mask'].size == (160, 120) and json.loads(samples[0]['scene'])['seed']
    assert len(load_llava(tmp_path, 'cor', kinds=['locate'])) == 2


def test_splits_never_share_scenes():
    train = {scene_seed(CONFIG, i) for i in range(3000)}
    for split in ('eval', 'hard'):
        other = DataConfig(split=split)
        assert not train & {scene_seed(other, i) for i in range(300)}


def test_randomized_worlds_from_the_command_line(tmp_path):
    main(['--out', str(tmp_path), '--scenes', '4', '--workers', '1', '--randomize',
          '--max-side', '200', '--questions', '2'])
    records = read_jsonl(tmp_path / 'samples.jsonl')
    assert len({r['scene_seed'] for r in records}) >= 3
    sizes = set()
    for record in records:
        image = Image.open(tmp_path / record['image'])
        assert image.size == (record['width'], record['height']) and max(image.size) <= 200
        sizes.add(image.size)
        view, camera = record['view'], record['scene']['camera']
        assert record['scene']['world']['view'] == view
        assert view['fovy_deg'] == camera['fovy_deg'] and 320 <= view['native_width'] <= 1280
        mask = np.array(Image.open(tmp_path / record['mask'])) >= 128
        points = np.array(record['points'])
        cols, rows = (points[:, 0] * image.size[0]).astype(int), \
            (points[:, 1] * image.size[1]).astype(int)
        assert mask[rows, cols].all()
    assert len(sizes) >= 2
    config = json.loads((tmp_path / 'config.json').read_text())
    assert config['data']['world'] == 'random' and config['data']['max_side'] == 200
