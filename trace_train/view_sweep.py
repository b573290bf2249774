"""
Accuracy against the camera view: pitch, distance, yaw, field of view and image size.

``python -m trace_train.view_sweep --data data/eval/sim_w2p_random --model DIR --out DIR``
asks every question with ``trace_train.evaluate`` (its answers, scores and files go to
``DIR/eval``; ``--eval DIR`` reuses an earlier evaluate output instead), then bins the
per-question scores by the ``view`` each question of the folder carries (randomized sets,
``make_eval_sets``) and writes ``view_sweep.json`` and ``view_sweep.png`` (accuracy per bin,
with question counts). Two baselines are scored the same way: ``random`` (50 uniform random
points per question, about the mask's share of the image) and ``table_centre`` (the table
centre projected into the image).
"""

import argparse
import json
import pathlib
from typing import Dict, List, Optional

import numpy as np
from trace_ros.core.answer_format import format_points
from trace_ros.core.where2place import load_questions
from trace_ros.sim.scene import SceneConfig, TABLE_TOP_Z
from trace_train.eval import evaluate

BINS = {
    'pitch_deg': [20, 35, 50, 65, 80],
    'distance': [0.5, 0.8, 1.1, 1.4, 1.8],
    'yaw_deg': [-180, -135, -45, 45, 135, 180],
    'fovy_deg': [40, 50, 60, 75],
    'native_width': [320, 560, 800, 1040, 1281],
}
LABELS = {'pitch_deg': 'camera pitch (deg down)', 'distance': 'camera distance (m)',
          'yaw_deg': 'camera yaw (deg; 0 default side, +-180 behind the arm)',
          'fovy_deg': 'vertical field of view (deg)', 'native_width': 'image width (px)'}
RANDOM_POINTS = 50


def baseline_answers(folder: str, kind: str, seed: int = 0) -> List[Dict]:
    """Return evaluate-style rows answering every question with a ``kind`` baseline."""
    rows = []
    for question in load_questions(folder):
        if kind == 'random':
            rng = np.random.default_rng([seed, question['question_id']])
            points = rng.uniform(0, 1, (RANDOM_POINTS, 2))
        else:
            camera = SceneConfig.from_dict(question['scene']).camera.camera()
            (u, v), = camera.project(np.array([[0.0, 0.0, TABLE_TOP_Z]]))[0]
            points = np.array([[np.clip((u + 0.5) / camera.width, 0, 0.999),
                                np.clip((v + 0.5) / camera.height, 0, 0.999)]])
        rows.append({'question_id': question['question_id'], 'text': format_points(points, 3),
                     'error': '', 'category': question.get('category', ''), 'latency_s': 0.0})
    return rows


def sweep(folder: str, scores: Dict[str, float]) -> Dict[str, List[Dict]]:
    """Bin per-question scores (keyed by str(question_id)) by each view quantity."""
    questions = [q for q in load_questions(folder) if 'view' in q]
    if not questions:
        raise ValueError(f'{folder}: no question carries a view (randomized sets do)')
    out = {}
    for key, edges in BINS.items():
        values = np.array([q['view'][key] for q in questions], float)
        score = np.array([scores.get(str(q['question_id']), 0.0) for q in questions], float)
        which = np.clip(np.digitize(values, edges) - 1, 0, len(edges) - 2)
        out[key] = [{'bin': [edges[i], edges[i + 1]], 'count': int((which == i).sum()),
                     'accuracy': float(score[which == i].mean()) if (which == i).any() else None}
                    for i in range(len(edges) - 1)]
    return out


def plot(results: Dict[str, Dict], path: pathlib.Path) -> None:
    """One panel per view quantity: accuracy per bin for each method, counts on the bars."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    figure, axes = pyplot.subplots(1, len(BINS), figsize=(4.2 * len(BINS), 3.6))
    width = 0.8 / len(results)
    for axis, key in zip(axes, BINS):
        for m, (name, result) in enumerate(results.items()):
            bins = result['sweep'][key]
            x = np.arange(len(bins)) + (m - (len(results) - 1) / 2) * width
            heights = [b['accuracy'] or 0.0 for b in bins]
            axis.bar(x, heights, width, label=f'{name} ({result["accuracy"]:.3f})')
            if m == 0:
                for xi, b in zip(np.arange(len(bins)), bins):
                    axis.text(xi, 0.97, f'n={b["count"]}', ha='center', va='top', fontsize=7)
        axis.set_xticks(np.arange(len(BINS[key]) - 1))
        axis.set_xticklabels([f'{a:g}-{b:g}' for a, b in zip(BINS[key], BINS[key][1:])],
                             fontsize=7, rotation=30)
        axis.set_ylim(0, 1)
        axis.set_title(LABELS[key], fontsize=9)
    axes[0].set_ylabel('accuracy')
    axes[0].legend(fontsize=7, loc='center left')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def main(argv: Optional[List[str]] = None) -> Dict:
    """Command line (module docstring); print and return the results."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--data', required=True,
                        help='Where2Place folder whose questions carry a view')
    parser.add_argument('--out', required=True)
    parser.add_argument('--model', default='', help='evaluate this model (transformers)')
    parser.add_argument('--eval', default='', help='reuse this evaluate output (answers.jsonl)')
    parser.add_argument('--name', default='', help='the model name in the plot')
    parser.add_argument('--no-baselines', action='store_true')
    args, rest = parser.parse_known_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.eval:
        rows = [json.loads(line) for line in
                (pathlib.Path(args.eval) / 'answers.jsonl').read_text().splitlines()]
        metrics = evaluate.summarize(args.data, rows)
    elif args.model:
        metrics = evaluate.main(['--data', args.data, '--model', args.model,
                                 '--out', str(out / 'eval'), *rest])
    else:
        metrics = None
    if metrics is not None:
        name = args.name or pathlib.Path(args.model or args.eval).name
        if name in ('random', 'table_centre'):  # a folder named like a baseline
            name = f'{name} (model)'
        results[name] = {'accuracy': metrics['accuracy'],
                         'parse_failure_rate': metrics['parse_failure_rate'],
                         'sweep': sweep(args.data, metrics['scores'])}
    if not args.no_baselines:
        for kind in ('random', 'table_centre'):
            scored = evaluate.summarize(args.data, baseline_answers(args.data, kind))
            results[kind] = {'accuracy': scored['accuracy'],
                             'parse_failure_rate': scored['parse_failure_rate'],
                             'sweep': sweep(args.data, scored['scores'])}
    if not results:
        parser.error('give --model or --eval, or leave the baselines on')
    (out / 'view_sweep.json').write_text(json.dumps(results, indent=1) + '\n')
    plot(results, out / 'view_sweep.png')
    for name, result in results.items():
        print(f'{name}: accuracy {result["accuracy"]:.3f}, parse failures '
              f'{result["parse_failure_rate"]:.3f}')
        for key in BINS:
            cells = ', '.join(f'{b["bin"][0]:g}-{b["bin"][1]:g}: '
                              + (f'{b["accuracy"]:.3f}' if b['accuracy'] is not None else '-')
                              + f' (n={b["count"]})' for b in result['sweep'][key])
            print(f'  {key}: {cells}')
    return results


if __name__ == '__main__':
    main()
