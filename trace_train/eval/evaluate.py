"""
Where2Place-style evaluation of any trace_ros model backend: answers, accuracy, a figure.

``python -m trace_train.evaluate --data data/eval/sim_w2p --backend transformers --model DIR
--out out/eval`` asks every question of a Where2Place-layout folder (``images/``,
``masks/``, ``point_questions.jsonl``; the real Where2Place download works unchanged),
writes ``answers.jsonl`` (text + latency), and scores it with the core metric
(``trace_ros.core.where2place``; ``--official`` reproduces RoboPoint's scorer): accuracy,
per-relation accuracy, a 95 % bootstrap interval of the accuracy over the questions,
parse-failure rate, latency, ``metrics.json``, ``summary.png`` (bars)
and ``overlays.png`` (answers on images). Folders whose questions carry ``reference_points``
(our sim sets) also get ``reference_localization``: how far the position a CoR gives for the
reference object (step 2) is from the object. ``--images blank|shuffled`` probes image use.
``--structured`` (default, as the node) decodes inside the reply grammar, ``--no-structured``
freely; ``grammar_rate`` and ``length_rate`` say how many replies match it and hit the limit.
"""

import argparse
import collections
import json
import os
import pathlib
import time
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from tqdm import tqdm
from trace_ros.backends import Backend, make_backend
from trace_ros.core.answer_format import matches_grammar, read_point, reply_regex
from trace_ros.core.parsing import parse_answer
from trace_ros.core.prompts import build_prompt
from trace_ros.core.where2place import load_mask, load_questions, mask_path, score_folder


IMAGE_MODES = ('real', 'blank', 'shuffled')


def load_image(folder: str, question: Dict) -> np.ndarray:
    """Return the question's image as an RGB array."""
    with Image.open(os.path.join(folder, 'images', question['image'])) as image:
        return np.asarray(image.convert('RGB'))


def probe_image(folder: str, questions: List[Dict], index: int, mode: str) -> np.ndarray:
    """
    Return the image question ``index`` is asked on in ``mode``.

    ``real``: its own; ``blank``: its mean colour everywhere; ``shuffled``: the image of a
    question half the set away (another scene), so answers that ignore the image score the same.
    """
    if mode == 'shuffled':
        index = (index + len(questions) // 2) % len(questions)
    image = load_image(folder, questions[index])
    if mode == 'blank':
        image = np.broadcast_to(image.mean((0, 1)).astype(np.uint8), image.shape).copy()
    return image


def ask_all(backend: Backend, folder: str, prompt_style: str, limit: Optional[int] = None,
            timeout_s: Optional[float] = None, image_mode: str = 'real') -> List[Dict]:
    """Answer every question of ``folder``; each row holds the reply and its latency."""
    rows = []
    questions = load_questions(folder)[:limit]
    for index, question in enumerate(tqdm(questions, desc='questions')):
        image = probe_image(folder, questions, index, image_mode)
        start = time.perf_counter()
        try:
            generation = backend.generate(image, build_prompt(question['text'], prompt_style),
                                          timeout_s=timeout_s)
            text, error, finish = generation.text, '', generation.finish_reason
            num_tokens = generation.num_tokens
        except Exception as exc:  # a failed question scores 0; the run goes on
            text, error, finish, num_tokens = '', f'{type(exc).__name__}: {exc}', '', 0
        rows.append({'question_id': question['question_id'], 'text': text, 'error': error,
                     'category': question.get('category', ''), 'finish_reason': finish,
                     'num_tokens': num_tokens, 'latency_s': time.perf_counter() - start})
    return rows


def summarize(folder: str, rows: List[Dict], official: bool = False,
              limit: Optional[int] = None, prompt_style: str = 'cor') -> Dict:
    """Score ``rows`` with the core metric; add per-relation accuracy and latencies."""
    result = score_folder(folder, {r['question_id']: r['text'] for r in rows},
                          official=official, limit=limit)
    per_relation = collections.defaultdict(list)
    for row in rows:
        score = result.scores.get(str(row['question_id']))
        if score is not None:
            per_relation[row['category'] or 'all'].append(score)
    latencies = np.array([r['latency_s'] for r in rows]) if rows else np.zeros(1)
    return {'accuracy': result.accuracy, 'num_questions': result.num_questions,
            'accuracy_ci95': bootstrap_interval(list(result.scores.values())),
            'scored': len(result.scores), 'official': official,
            'parse_failure_rate': len(result.parse_failures) / max(1, result.num_questions),
            'grammar_rate': float(np.mean([matches_grammar(r['text'], prompt_style)
                                           for r in rows])) if rows else 0.0,
            'length_rate': float(np.mean([r.get('finish_reason') == 'length'
                                          for r in rows])) if rows else 0.0,
            'per_relation': {k: float(np.mean(v)) for k, v in sorted(per_relation.items())},
            'scores': result.scores,
            'latency_p50_s': float(np.percentile(latencies, 50)),
            'latency_p95_s': float(np.percentile(latencies, 95)),
            'reference_localization': reference_localization(folder, rows)}


def bootstrap_interval(scores, other=None, resamples: int = 5000, seed: int = 0) -> List[float]:
    """
    Return the 95 % bootstrap interval of the mean of ``scores`` over questions.

    With ``other`` (the same questions' scores of another model, in the same order), the
    interval of the paired difference of the means (scores - other).
    """
    values = np.asarray(scores, dtype=float)
    if other is not None:
        other = np.asarray(other, dtype=float)
        if other.shape != values.shape:
            raise ValueError(f'paired scores differ in length: {values.shape} vs {other.shape}')
        values = values - other
    if not len(values):
        return [float('nan'), float('nan')]
    rows = np.random.default_rng(seed).integers(0, len(values), (resamples, len(values)))
    return np.percentile(values[rows].mean(1), [2.5, 97.5]).tolist()


def reference_localization(folder: str, rows: List[Dict], radius: float = 0.05) -> Dict:
    """
    How well the CoRs of ``rows`` place the instruction's reference object.

    Over the questions with an object reference and a known ``reference_points``: the share
    whose step-2 point is within ``radius`` (normalized) of the object, a missing point
    counting as a miss, and the median distance of the points given.
    """
    questions = {q['question_id']: q for q in load_questions(folder)}
    distances, asked = [], 0
    for row in rows:
        question = questions[row['question_id']]
        if question.get('goal_subtype') != 'object reference' or \
                not question.get('reference_points'):
            continue
        asked += 1
        point = read_point(parse_answer(row['text']).reference)
        if point is not None:
            offset = np.subtract(point, question['reference_points'][0])
            distances.append(float(np.linalg.norm(offset)))
    return {'questions': asked, 'with_point': len(distances),
            f'within_{radius}': sum(d <= radius for d in distances) / max(1, asked),
            'median_distance': float(np.median(distances)) if distances else None}


def plot(metrics: Dict, path: pathlib.Path) -> None:
    """Bar chart of accuracy per relation, with the overall accuracy."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    names = list(metrics['per_relation'])
    figure, axis = pyplot.subplots(figsize=(max(4, 0.7 * len(names) + 2), 3.5))
    axis.bar(names, [metrics['per_relation'][n] for n in names], color='tab:blue')
    axis.axhline(metrics['accuracy'], color='tab:red', label=f'all {metrics["accuracy"]:.3f}')
    axis.set_ylim(0, 1)
    axis.set_ylabel('accuracy')
    axis.tick_params(axis='x', rotation=45)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def plot_overlays(folder: str, rows: List[Dict], scores: Dict, path: pathlib.Path,
                  count: int = 8) -> None:
    """Draw the first ``count`` questions: ground-truth mask (green) and answer points (red)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    questions = load_questions(folder)
    count = min(count, len(rows))
    columns = min(4, count)
    figure, axes = pyplot.subplots((count + columns - 1) // columns, columns,
                                   figsize=(4 * columns, 3.2 * ((count + columns - 1) // columns)),
                                   squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis('off')
        if index >= count:
            continue
        image = load_image(folder, questions[index])
        height, width = image.shape[:2]
        mask = load_mask(mask_path(folder, questions[index], index))
        axis.imshow(image)
        axis.contour(mask, levels=[0.5], colors='lime', linewidths=1.2)
        points = parse_answer(rows[index]['text'], image_size=(width, height)).points
        if len(points):
            axis.scatter(points[:, 0] * width, points[:, 1] * height, c='red', marker='x', s=30)
        score = scores.get(str(rows[index]['question_id']), float('nan'))
        axis.set_title(f'{rows[index]["category"] or "question"}: {score:.2f}', fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    pyplot.close(figure)


def main(argv=None) -> Dict:
    """Run the evaluation CLI and print the metrics."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--data', required=True, help='Where2Place-layout folder')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--backend', choices=('transformers', 'openai'), default='transformers')
    parser.add_argument('--model', default='', help='transformers: model dir or hub id; '
                        'openai: served model name')
    parser.add_argument('--base-url', default='http://localhost:8000/v1', help='openai: URL')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--prompt-style', choices=('cor', 'plain'), default='cor')
    parser.add_argument('--max-new-tokens', type=int, default=800)
    parser.add_argument('--timeout', type=float, default=120.0, help='seconds per question')
    parser.add_argument('--limit', type=int, default=None, help='only the first N questions')
    parser.add_argument('--images', choices=IMAGE_MODES, default='real',
                        help='probe: blank or shuffled images show whether answers use the image')
    parser.add_argument('--official', action='store_true',
                        help="reproduce RoboPoint's scorer (640x480 scaling, skips)")
    parser.add_argument('--structured', action=argparse.BooleanOptionalAction, default=True,
                        help='decode inside the reply grammar of --prompt-style')
    parser.add_argument('--structured-output-field', choices=('vllm', 'sglang', 'none'),
                        default='vllm', help='openai: how the server gets the grammar')
    args = parser.parse_args(argv)
    regex = reply_regex(args.prompt_style) if args.structured else None
    if args.backend == 'openai':
        backend = make_backend('openai', base_url=args.base_url, model=args.model,
                               max_new_tokens=args.max_new_tokens, reply_regex=regex,
                               structured_output_field=args.structured_output_field)
    else:
        backend = make_backend('transformers', model=args.model, device=args.device,
                               max_new_tokens=args.max_new_tokens, reply_regex=regex)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with backend:
        rows = ask_all(backend, args.data, args.prompt_style, args.limit, args.timeout,
                       args.images)
    with open(out / 'answers.jsonl', 'w', encoding='utf-8') as file:
        file.writelines(json.dumps(row) + '\n' for row in rows)
    metrics = summarize(args.data, rows, args.official, args.limit, args.prompt_style)
    metrics.update(model=backend.model_id, prompt_style=args.prompt_style, data=args.data,
                   images=args.images, structured=args.structured)
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
    plot(metrics, out / 'summary.png')
    plot_overlays(args.data, rows, metrics['scores'], out / 'overlays.png')
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == '__main__':
    main()
