"""
Generate a TRACE training set: parallel over processes, deterministic, resumable.

Usage: python -m trace_train.data.generate --out out/trace_data --scenes 1000 --workers 2
[--size 224 224] [--questions 4] [--locate 2] [--dense] [--seed 0]
[--randomize [--max-side 640]]

Scenes are cut into chunks; each chunk is written atomically to ``chunks/`` when done, so an
interrupted run picks up where it stopped (the same command again). A sample depends only
on (seed, split, scene index), never on the number of workers or chunks. Output layout::

    images/000123.jpg              one rendered scene, shared by its samples
    masks/<id>.png                 each sample's target mask (white = target)
    dense/000123.png, .json        with --dense: per-pixel labels, label -> object
    samples.jsonl                  every sample with its ground truth (region, points, ...)
    llava_cor.json                 LLaVA/RoboPoint conversations, CoR answers
    llava_plain.json               the same with the answer points only (ablations)
    stats.json, stats.png, contact_sheet.jpg, config.json
"""

import argparse
import collections
import dataclasses
import json
import multiprocessing
import os
import pathlib
import time
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm
from trace_ros.core.answer_format import llava_human_value
from trace_ros.core.prompts import build_prompt
from trace_train.data.relations import RELATIONS, TRAIN_RELATIONS
from trace_train.data.samples import (DataConfig, make_scene_samples, POINT_ORDERS,
                                      SceneSamples, WORLDS)

LABELS_JSON_VERSION = 1


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """What is written besides the images and sample records."""

    jpeg_quality: int = 95
    masks: bool = True
    dense: bool = False


def dense_labels(result: SceneSamples) -> Dict:
    """Describe the segmentation labels, with each object's pixel count and centroid."""
    labels = result.frame.labels
    height, width = labels.shape
    table = {'0': {'name': 'background'}, '1': {'name': 'table'}, '2': {'name': 'robot'}}
    for obj in result.scene.objects:
        label = result.scene.label_of(obj.name)
        rows, cols = np.nonzero(labels == label)
        entry = {'name': obj.name, 'label': obj.label, 'category': obj.category,
                 'colour': obj.colour, 'pixels': int(len(rows))}
        if len(rows):
            entry['centroid'] = [round((cols.mean() + 0.5) / width, 4),
                                 round((rows.mean() + 0.5) / height, 4)]
            entry['box'] = [int(cols.min()), int(rows.min()), int(cols.max()) + 1,
                            int(rows.max()) + 1]
        table[str(label)] = entry
    return {'version': LABELS_JSON_VERSION, 'width': width, 'height': height, 'labels': table}


def write_scene(result: SceneSamples, out: pathlib.Path, options: OutputOptions) -> List[Dict]:
    """Write a scene's image, masks and dense labels; return its records with their paths."""
    if result.scene is None or not result.samples:
        return []
    stem = f'{result.index:06d}'
    Image.fromarray(result.frame.rgb).save(out / 'images' / f'{stem}.jpg', 'JPEG',
                                           quality=options.jpeg_quality)
    if options.dense:
        Image.fromarray(result.frame.labels).save(out / 'dense' / f'{stem}.png')
        (out / 'dense' / f'{stem}.json').write_text(json.dumps(dense_labels(result)))
    records = []
    for sample in result.samples:
        record = {**sample.record, 'image': f'images/{stem}.jpg'}
        if options.masks:
            record['mask'] = f'masks/{record["id"]}.png'
            mask = Image.fromarray(sample.mask.astype(np.uint8) * 255)
            mask.save(out / record['mask'], optimize=True)
        if options.dense:
            record['dense'] = f'dense/{stem}.png'
        records.append(record)
    return records


def _run_chunk(job) -> Dict:
    """Worker: generate and write one chunk of scenes, then its chunk file (atomically)."""
    config, out, chunk, indices, options = job
    start, records, counters = time.perf_counter(), [], collections.Counter()
    for index in indices:
        result = make_scene_samples(config, index)
        records += write_scene(result, out, options)
        counters += result.counters
    path = out / 'chunks' / f'chunk_{chunk:05d}.json'
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps({'records': records, 'counters': counters,
                               'seconds': time.perf_counter() - start}))
    os.replace(tmp, path)
    return {'scenes': len(indices), 'samples': len(records)}


def llava_record(record: Dict, variant: str = 'cor') -> Dict:
    """One sample as a LLaVA/RoboPoint conversation; ``variant`` 'cor' or 'plain'."""
    if record['kind'] == 'placement':
        prompt = build_prompt(record['instruction'], style=variant)
        reply = record['cor'] if variant == 'cor' else record['answer']
    else:
        prompt, reply = record['instruction'], record['answer']
    return {'id': record['id'], 'image': record['image'],
            'conversations': [{'from': 'human', 'value': llava_human_value(prompt)},
                              {'from': 'gpt', 'value': reply}],
            'kind': record['kind'], 'relation': record['relation'],
            'goal_subtype': record['goal_subtype']}


def merge(out: pathlib.Path):
    """Collect the records and summed counters of all chunk files, in scene order."""
    records, counters, seconds = [], collections.Counter(), 0.0
    for path in sorted((out / 'chunks').glob('chunk_*.json')):
        chunk = json.loads(path.read_text())
        records += chunk['records']
        counters.update(chunk['counters'])
        seconds += chunk['seconds']
    return records, counters, seconds


def generate(config: DataConfig, out, scenes: int, workers: int = 1, chunk_size: int = 20,
             options: OutputOptions = OutputOptions(), report: bool = True,
             progress: bool = True) -> Dict:
    """Generate (or finish) a split under ``out``; return its statistics."""
    from trace_train.data.report import write_report  # matplotlib only when reporting
    out = pathlib.Path(out)
    for sub in ('images', 'masks', 'dense', 'chunks'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps({'data': config.to_dict(), 'scenes': scenes,
                                      'chunk_size': chunk_size,
                                      'output': dataclasses.asdict(options)}))
    saved = out / 'config.json'
    if saved.exists() and json.loads(saved.read_text()) != settings:
        raise ValueError(f'{out} holds a different configuration ({saved}); '
                         'use another --out or delete it')
    saved.write_text(json.dumps(settings, indent=1))
    jobs = [(config, out, c, list(range(s, min(s + chunk_size, scenes))), options)
            for c, s in enumerate(range(0, scenes, chunk_size))
            if not (out / 'chunks' / f'chunk_{c:05d}.json').exists()]
    todo = sum(len(job[3]) for job in jobs)
    start, made = time.perf_counter(), 0
    with tqdm(total=scenes, initial=scenes - todo, unit='scene', disable=not progress,
              desc='scenes') as bar:
        if workers > 1 and len(jobs) > 1:
            with multiprocessing.get_context('spawn').Pool(workers) as pool:
                for done in pool.imap_unordered(_run_chunk, jobs):
                    made += done['samples']
                    bar.update(done['scenes'])
                    bar.set_postfix(samples=made)
        else:
            for job in jobs:
                done = _run_chunk(job)
                made += done['samples']
                bar.update(done['scenes'])
                bar.set_postfix(samples=made)
    elapsed = time.perf_counter() - start
    records, counters, _ = merge(out)
    with open(out / 'samples.jsonl', 'w', encoding='utf-8') as file:
        for record in records:
            file.write(json.dumps(record) + '\n')
    for variant in ('cor', 'plain'):
        rows = [llava_record(r, variant) for r in records]
        (out / f'llava_{variant}.json').write_text(json.dumps(rows))
    run = {'seconds': round(elapsed, 2), 'samples': made, 'scenes': todo, 'workers': workers,
           'samples_per_s': round(made / elapsed, 2) if elapsed and made else None}
    return write_report(out, records, counters, run) if report else {'run': run}


def main(argv: Optional[List[str]] = None) -> None:
    """Command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--out', required=True)
    parser.add_argument('--scenes', type=int, default=100)
    parser.add_argument('--workers', type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument('--chunk-size', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--split', default='train')
    parser.add_argument('--size', type=int, nargs=2, default=(640, 480),
                        metavar=('WIDTH', 'HEIGHT'))
    parser.add_argument('--questions', type=int, default=4, help='placement questions/scene')
    parser.add_argument('--locate', type=int, default=0, help='locate samples per scene')
    parser.add_argument('--relations', nargs='+', default=list(TRAIN_RELATIONS),
                        choices=list(RELATIONS), metavar='RELATION')
    parser.add_argument('--camera-jitter', type=float, default=DataConfig.camera_jitter)
    parser.add_argument('--no-shadows', action='store_true')
    parser.add_argument('--jpeg-quality', type=int, default=95)
    parser.add_argument('--point-order', choices=POINT_ORDERS, default='random',
                        help="answer points: 'random' pixels of the target mask, or "
                        "'interior' (its most interior pixel, then farthest-point order among "
                        'pixels at least half as deep; CoR step 3 gives that centre, no box)')
    parser.add_argument('--world', choices=WORLDS, default='default',
                        help="'random': randomized worlds (camera, lights, table, objects, "
                        'sensor; docs/DATASET.md) at mixed image sizes, --size unused')
    parser.add_argument('--randomize', action='store_const', const='random', dest='world',
                        help='the same as --world random')
    parser.add_argument('--max-side', type=int, default=DataConfig.max_side,
                        help='random worlds: render and store images at most this large')
    parser.add_argument('--no-masks', action='store_true')
    parser.add_argument('--dense', action='store_true', help='save per-pixel object labels')
    args = parser.parse_args(argv)
    config = DataConfig(seed=args.seed, split=args.split, width=args.size[0],
                        height=args.size[1], relations=tuple(args.relations),
                        questions_per_scene=args.questions, locate_per_scene=args.locate,
                        camera_jitter=args.camera_jitter, shadows=not args.no_shadows,
                        point_order=args.point_order, world=args.world,
                        max_side=args.max_side)
    options = OutputOptions(args.jpeg_quality, not args.no_masks, args.dense)
    stats = generate(config, args.out, args.scenes, args.workers, args.chunk_size, options)
    run = stats['run']
    print(f'{run["samples"]} samples from {run["scenes"]} scenes in {run["seconds"]:.1f} s '
          f'with {run["workers"]} workers: {run["samples_per_s"]} samples/s; '
          f'{stats["samples"]} samples in {args.out} ({stats["bytes"] / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
