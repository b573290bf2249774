"""
Attention maps of a transformers model across the TRACE reasoning steps, with statistics.

``python -m trace_train.attention --data data/eval/sim_w2p --model DIR --out out/attention``
answers the questions of a Where2Place-layout folder (or ``--image PATH --instruction TEXT``
pairs) greedily and writes, per sample, ``<sample>/<step>.png`` (the step's attention over the
image) and ``<sample>/figure.png`` (steps side by side with the answer points and the
ground-truth mask), then ``summary.json`` and ``summary.png``: per step, the mean and std of
the normalized entropy (1 = flat, 0 = one cell) and of the top-10% mass over the set.
"""

import argparse
import json
import os
import pathlib
import textwrap
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm
from trace_ros.backends import Backend, make_backend
from trace_ros.core.attention import AttentionResult, concentration, overlay, REPLY, step_label
from trace_ros.core.parsing import parse_answer, STEP_KEYS
from trace_ros.core.prompts import build_prompt, strip_format_suffix
from trace_ros.core.where2place import load_mask, load_questions, mask_path
from trace_train.eval.evaluate import load_image

STEPS = (REPLY,) + STEP_KEYS
STATS = ('entropy', 'top10_mass', 'image_share')


def data_samples(folder: str, limit: Optional[int] = None) -> List[Dict]:
    """Return the first ``limit`` questions of a Where2Place folder as samples with masks."""
    samples = []
    for index, question in enumerate(load_questions(folder)[:limit]):
        samples.append({'name': f'q{question["question_id"]}', 'instruction': question['text'],
                        'image': load_image(folder, question),
                        'mask': load_mask(mask_path(folder, question, index))})
    return samples


def image_samples(images: List[str], instructions: List[str]) -> List[Dict]:
    """Return ``--image`` / ``--instruction`` pairs as samples without masks."""
    samples = []
    for index, (path, instruction) in enumerate(zip(images, instructions)):
        with Image.open(path) as image:
            rgb = np.asarray(image.convert('RGB'))
        name = f'{index:02d}_{pathlib.Path(path).stem}'
        samples.append({'name': name, 'instruction': instruction, 'image': rgb, 'mask': None})
    return samples


def plot_sample(sample: Dict, result: AttentionResult, path: pathlib.Path) -> None:
    """Draw the steps' maps side by side with the answer points (red) and the mask (green)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    image = sample['image']
    height, width = image.shape[:2]
    points = parse_answer(result.text, image_size=(width, height)).points
    figure, axes = pyplot.subplots(1, len(result.maps), squeeze=False,
                                   figsize=(3.2 * len(result.maps), 3.2 * height / width + 0.6))
    for axis, (name, attention_map) in zip(axes[0], result.maps.items()):
        axis.imshow(overlay(image, attention_map))
        if sample['mask'] is not None:
            axis.contour(sample['mask'], levels=[0.5], colors='lime', linewidths=1.0)
        if len(points):
            axis.scatter(points[:, 0] * width, points[:, 1] * height, c='red', marker='x', s=25)
        stats = concentration(attention_map)
        axis.set_title(f'{step_label(name, attention_map)}\ntop10%={stats["top10_mass"]:.2f}',
                       fontsize=8)
        axis.axis('off')
    title = strip_format_suffix(sample['instruction'])
    figure.suptitle(textwrap.shorten(title, 45 * len(result.maps)), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def step_stats(result: AttentionResult) -> Dict[str, Dict]:
    """Return each map's concentration, image share and text (the whole reply for REPLY)."""
    stats = {}
    for name, attention_map in result.maps.items():
        start, end = result.spans.get(name, (0, len(result.text)))
        stats[name] = {**concentration(attention_map), 'image_share': result.image_share[name],
                       'text': result.text[start:end]}
    return stats


def analyse(backend: Backend, samples: List[Dict], out: pathlib.Path,
            layers: Optional[List[int]] = None) -> List[Dict]:
    """Write each sample's maps and figure; return a row per sample with per-step statistics."""
    rows = []
    for sample in tqdm(samples, desc='samples'):
        result = backend.attention_maps(sample['image'], build_prompt(sample['instruction']),
                                        layers=layers)
        folder = out / sample['name']
        folder.mkdir(parents=True, exist_ok=True)
        for name, attention_map in result.maps.items():
            Image.fromarray(overlay(sample['image'], attention_map)).save(folder / f'{name}.png')
        plot_sample(sample, result, folder / 'figure.png')
        rows.append({'name': sample['name'], 'instruction': sample['instruction'],
                     'grid': list(result.grid), 'layers': list(result.layers),
                     'steps': step_stats(result)})
    return rows


def summarize(rows: List[Dict]) -> Dict:
    """Return, per step, how many samples had it and the mean and std of each statistic."""
    steps = {}
    for name in STEPS:
        found = [row['steps'][name] for row in rows if name in row['steps']]
        if found:
            steps[name] = {'count': len(found), **{
                f'{stat}_{kind}': float(reduce([s[stat] for s in found]))
                for stat in STATS for kind, reduce in (('mean', np.mean), ('std', np.std))}}
    return {'num_samples': len(rows), 'steps': steps}


def plot_summary(summary: Dict, path: pathlib.Path) -> None:
    """Bar chart per step: mean normalized entropy and top-10% mass, with std error bars."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    names = list(summary['steps'])
    positions = np.arange(len(names))
    figure, axis = pyplot.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 3.5))
    for offset, stat, label in ((-0.2, 'entropy', 'normalized entropy'),
                                (0.2, 'top10_mass', 'top-10% mass')):
        axis.bar(positions + offset, [summary['steps'][n][f'{stat}_mean'] for n in names], 0.4,
                 yerr=[summary['steps'][n][f'{stat}_std'] for n in names], capsize=3,
                 label=label)
    axis.set_xticks(positions, [n.replace('_', ' ') for n in names], rotation=30)
    axis.set_ylim(0, 1.05)
    axis.set_title(f'attention concentration per step ({summary["num_samples"]} samples)')
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def main(argv=None) -> Dict:
    """Run the attention CLI and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--data', help='Where2Place-layout folder')
    parser.add_argument('--image', action='append', default=[], help='an image (repeatable)')
    parser.add_argument('--instruction', action='append', default=[],
                        help='the instruction for the --image at the same place (repeatable)')
    parser.add_argument('--model', required=True, help='transformers model dir or hub id')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--limit', type=int, default=None, help='only the first N questions')
    parser.add_argument('--layers', type=int, nargs='+', default=None,
                        help='decoder layers to average (negative from the end; default all)')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--max-new-tokens', type=int, default=256)
    args = parser.parse_args(argv)
    if not args.data and not args.image:
        parser.error('give --data or --image/--instruction pairs')
    if len(args.image) != len(args.instruction):
        parser.error(f'{len(args.image)} --image but {len(args.instruction)} --instruction')
    samples = data_samples(args.data, args.limit) if args.data else []
    samples += image_samples(args.image, args.instruction)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with make_backend('transformers', model=args.model, device=args.device,
                      max_new_tokens=args.max_new_tokens) as backend:
        rows = analyse(backend, samples, out, args.layers)
        model_id = backend.model_id
    summary = {'model': model_id, 'data': args.data or '', **summarize(rows), 'samples': rows}
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    plot_summary(summary, out / 'summary.png')
    print(json.dumps({k: v for k, v in summary.items() if k != 'samples'}, indent=2))
    print(f'wrote {os.path.join(args.out, "summary.json")}')
    return summary


if __name__ == '__main__':
    main()
