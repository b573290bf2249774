"""
Regenerate the public simulated Where2Place evaluation sets (deterministic).

Usage: python -m trace_train.data.make_eval_sets [--out data/eval] [--only sim_w2p ...]

Each set is a folder in the Where2Place layout that ``trace_ros.core.where2place`` scores:
``images/NN.jpg``, ``masks/NN.jpg`` (white = target, binarize at 128) and
``point_questions.jsonl`` (``question_id``, ``image``, ``text`` with RoboPoint's answer-format
suffix, ``category`` = relation, plus the ground truth: instruction, goal subtype,
references, reference locations, answer points, CoR answer, scene seed and camera, 3D
region). One question per scene, relations taken in turn so each is equally represented:

* ``sim_w2p``: 100 questions over the training relations (scenes never used in training);
* ``sim_w2p_hard``: 50 questions over the relations held out of training, 'between' and
  'closest free space' (like W2P-hard, whose relation types training never saw);
* ``sim_w2p_random``: 156 questions over the training relations (13 each) in randomized
  worlds (``--randomize``: any camera, lights, table, objects, sensor), stored with the
  longer side at most 480 px; scene seeds come from (seed 0, split 'random_eval', index), a
  split no training run uses, so its scenes and views were never trained on. Each question
  also carries its ``view`` (camera yaw, pitch, distance, roll, vertical FOV, native image
  size) for ``python -m trace_train.view_sweep``;
* ``sim_w2p_val`` (not committed, ``--only sim_w2p_val``, 10 MB): 300 questions like sim_w2p
  from other held-out scenes, for choosing between models without tuning on sim_w2p. On 100
  questions a model's accuracy has a 95 % interval of about +-9 points; on 300, about +-5.
"""

import argparse
import dataclasses
import json
import pathlib
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm
from trace_ros.core.prompts import build_prompt
from trace_train.data.relations import HARD_RELATIONS, TRAIN_RELATIONS
from trace_train.data.samples import DataConfig, make_scene_samples

EVAL_SETS = {
    'sim_w2p': (DataConfig(seed=0, split='eval', relations=TRAIN_RELATIONS), 100),
    'sim_w2p_hard': (DataConfig(seed=0, split='hard', relations=HARD_RELATIONS), 50),
    'sim_w2p_val': (DataConfig(seed=1, split='eval', relations=TRAIN_RELATIONS), 300),
    'sim_w2p_random': (DataConfig(seed=0, split='random_eval', relations=TRAIN_RELATIONS,
                                  world='random', max_side=480), 156),
}
COMMITTED = ('sim_w2p', 'sim_w2p_hard', 'sim_w2p_random')
IMAGE_QUALITY, MASK_QUALITY = 80, 90
SET_IMAGE_QUALITY = {'sim_w2p_random': 70}  # its noisy images compress badly: 2.7 MB at 80
MAX_TRIES = 30  # scenes tried for one relation before it is skipped for that question


def question_record(index: int, record: Dict) -> Dict:
    """Make a Where2Place question line carrying the sample's ground truth."""
    keep = ('instruction', 'relation', 'goal_subtype', 'held', 'references',
            'reference_points', 'points', 'answer', 'cor', 'target_box', 'scene_seed',
            'scene', 'width', 'height', 'region')
    extra = {'view': record['view']} if 'view' in record else {}
    return {'question_id': index, 'image': f'{index:02d}.jpg',
            'text': build_prompt(record['instruction'], style='plain'),
            'category': record['relation'], **{k: record[k] for k in keep}, **extra}


def write_where2place(folder, config: DataConfig, count: int,
                      image_quality: int = IMAGE_QUALITY,
                      mask_quality: int = MASK_QUALITY) -> List[Dict]:
    """Write ``count`` questions (one per scene) to ``folder``; return the question lines."""
    folder = pathlib.Path(folder)
    for sub in ('images', 'masks'):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for old in (folder / sub).glob('*.jpg'):
            old.unlink()
    questions, scene, skipped, tries = [], 0, 0, 0
    bar = tqdm(total=count, desc=folder.name, unit='question')
    while len(questions) < count:
        relation = config.relations[(len(questions) + skipped) % len(config.relations)]
        one = dataclasses.replace(config, relations=(relation,), questions_per_scene=1,
                                  locate_per_scene=0)
        result = make_scene_samples(one, scene)
        scene += 1
        if not result.samples:
            tries += 1
            if tries == MAX_TRIES:
                skipped, tries = skipped + 1, 0
            continue
        tries = 0
        sample, index = result.samples[0], len(questions)
        Image.fromarray(result.frame.rgb).save(folder / 'images' / f'{index:02d}.jpg',
                                               quality=image_quality)
        Image.fromarray(sample.mask.astype(np.uint8) * 255).save(
            folder / 'masks' / f'{index:02d}.jpg', quality=mask_quality)
        questions.append(question_record(index, sample.record))
        bar.update()
    bar.close()
    with open(folder / 'point_questions.jsonl', 'w', encoding='utf-8') as file:
        for question in questions:
            file.write(json.dumps(question) + '\n')
    info = {'config': config.to_dict(), 'questions': count, 'scenes_drawn': scene,
            'image_quality': image_quality, 'mask_quality': mask_quality,
            'command': 'python -m trace_train.data.make_eval_sets'}
    (folder / 'info.json').write_text(json.dumps(info, indent=1) + '\n')
    return questions


def main(argv: Optional[List[str]] = None) -> None:
    """Command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--out', default='data/eval')
    parser.add_argument('--only', nargs='+', choices=list(EVAL_SETS), default=list(COMMITTED))
    args = parser.parse_args(argv)
    for name in args.only:
        config, count = EVAL_SETS[name]
        folder = pathlib.Path(args.out) / name
        questions = write_where2place(folder, config, count,
                                      SET_IMAGE_QUALITY.get(name, IMAGE_QUALITY))
        size = sum(p.stat().st_size for p in folder.rglob('*') if p.is_file())
        print(f'{folder}: {len(questions)} questions, {size / 1e6:.2f} MB')


if __name__ == '__main__':
    main()
