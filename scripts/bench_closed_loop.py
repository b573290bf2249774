"""
Closed-loop benchmark: success rate and per-stage latency over real nodes, per model.

Each model runs the closed loop (``trace_ros.ros.closed_loop``: trace_sim -> trace_node ->
trace_goal_executor over DDS) on N seeded scenes with a task drawn from the normal relations
and one from the hard (held-out) relations. Prints a table of success rates and median
latencies per stage (render, inference, node overhead, execution, instruction to outcome),
and writes ``episodes.jsonl``, ``summary.json`` and ``closed_loop.png`` to ``--out``.
``--refine on off`` runs each model with trace_node's refine_placement on and off on the
same seeded scenes and reports the paired difference in success (on - off) per relation
set with a bootstrap 95 % interval over scenes.

    python scripts/bench_closed_loop.py --scenes 20 \
        --model cor=out/ablation_8k/cor_1/final:cor \
        --model answer-only=out/ablation_8k/cor_0/final:plain
    python scripts/bench_closed_loop.py --scenes 20 --refine on off
"""

import argparse
import json
import os
import pathlib
import random

import numpy as np
from tqdm import tqdm

STAGES = ('render_s', 'inference_s', 'node_s', 'execution_s', 'loop_s')


def parse_model(text: str) -> tuple:
    """Parse NAME=PATH[:PROMPT_STYLE] (an empty PATH is the embedded model)."""
    name, _, rest = text.partition('=')
    path, _, style = rest.partition(':')
    if not name or style not in ('', 'cor', 'plain'):
        raise argparse.ArgumentTypeError(f'expected NAME=PATH[:cor|plain], got {text!r}')
    return name, path, style or 'cor'


def summarize(episodes: list) -> dict:
    """Return the success rate and the median and p90 per stage of a list of episodes."""
    summary = {'episodes': len(episodes),
               'success_rate': float(np.mean([e['success'] for e in episodes])),
               'goal_rate': float(np.mean([e['goal'] is not None for e in episodes]))}
    for stage in STAGES:
        values = np.array([e[stage] for e in episodes], dtype=float)
        values = values[np.isfinite(values)]
        summary[stage] = {'median': float(np.median(values)) if len(values) else None,
                          'p90': float(np.percentile(values, 90)) if len(values) else None}
    return summary


def paired_difference(on: list, off: list, resamples: int = 10000, seed: int = 0) -> dict:
    """
    Mean paired difference in success (on - off) over scenes, with a bootstrap 95 % interval.

    ``on`` and ``off`` are episode records of the same seeds; scenes are resampled with
    replacement ``resamples`` times (fixed seed).
    """
    by_seed = {e['seed']: e['success'] for e in off}
    pairs = [(float(e['success']), float(by_seed[e['seed']])) for e in on if e['seed'] in by_seed]
    diffs = np.array([a - b for a, b in pairs])
    if not len(diffs):
        return {'scenes': 0}
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), (resamples, len(diffs)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {'scenes': len(diffs), 'mean': float(diffs.mean()), 'ci95': [float(low), float(high)],
            'better': int((diffs > 0).sum()), 'worse': int((diffs < 0).sum())}


def plot(summary: dict, path: pathlib.Path) -> None:
    """Success rates per model and relation set, and median latency per stage."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    models = list(summary)
    splits = list(summary[models[0]])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(splits)
    for i, split in enumerate(splits):
        rates = [100 * summary[m][split]['success_rate'] for m in models]
        bars = left.bar(np.arange(len(models)) + i * width, rates, width, label=split)
        left.bar_label(bars, fmt='%.0f')
    left.set_xticks(np.arange(len(models)) + width * (len(splits) - 1) / 2, models)
    left.set_ylabel('placement success (%)')
    left.set_title('closed-loop success')
    left.legend(title='relations')
    stages = STAGES[:-1]
    bottom = np.zeros(len(models))
    for stage in stages:
        values = np.array([np.nanmedian([summary[m][s][stage]['median'] or np.nan
                                         for s in summary[m]]) for m in models])
        right.bar(models, values, bottom=bottom, label=stage[:-2])
        bottom += values
    right.set_ylabel('median seconds per instruction')
    right.set_title('latency per stage')
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    """Run every model on the scenes and relation sets; print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', type=parse_model, action='append', dest='models',
                        help='NAME=PATH[:cor|plain], repeatable (default: trace-tiny)')
    parser.add_argument('--scenes', type=int, default=20, help='scenes per relation set')
    parser.add_argument('--seed', type=int, default=1000, help='first scene seed')
    parser.add_argument('--relations', nargs='+', choices=('normal', 'hard'),
                        default=['normal', 'hard'])
    parser.add_argument('--torch-threads', type=int, default=1,
                        help="trace_node's torch_threads (0: torch's default)")
    parser.add_argument('--randomize-world', action='store_true',
                        help="randomized worlds: each seed's own camera, lights, table, objects")
    parser.add_argument('--refine', nargs='+', choices=('on', 'off'), default=None,
                        help="trace_node's refine_placement per run (default: its default); "
                        'on and off: paired comparison')
    parser.add_argument('--domain-id', type=int, default=None)
    parser.add_argument('--out', default='out/bench_closed_loop')
    args = parser.parse_args(argv)
    os.environ.setdefault('MUJOCO_GL', 'egl')
    from trace_ros.ros.closed_loop import ClosedLoop
    models = args.models or [('trace-tiny', '', 'cor')]
    domain = args.domain_id
    if domain is None:
        domain = int(os.environ.get('ROS_DOMAIN_ID') or random.randint(100, 199))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(f'{name} refine {r}' if args.refine else name, path, style,
             {'refine_placement': r == 'on'} if args.refine else {})
            for name, path, style in models for r in (args.refine or [None])]
    summary, episodes = {}, {}
    with open(out / 'episodes.jsonl', 'w') as log:
        for name, path, style, params in runs:
            summary[name] = {}
            with ClosedLoop(model=path, prompt_style=style, domain_id=domain,
                            torch_threads=args.torch_threads, trace_params=params,
                            randomize_world=args.randomize_world) as loop:
                for relations in args.relations:
                    records = episodes[name, relations] = []
                    seeds = range(args.seed, args.seed + args.scenes)
                    for seed in tqdm(seeds, desc=f'{name} {relations}', unit='scene'):
                        record = loop.run(seed, relations=relations).summary()
                        record.update(model=name, relations=relations)
                        log.write(json.dumps(record) + '\n')
                        log.flush()
                        records.append(record)
                    summary[name][relations] = summarize(records)
    paired = {}
    if args.refine and len(set(args.refine)) == 2:
        for name, _, _ in models:
            for relations in args.relations:
                paired[f'{name} {relations}'] = paired_difference(
                    episodes[f'{name} refine on', relations],
                    episodes[f'{name} refine off', relations])
        summary['paired refine on - off'] = paired
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    summary.pop('paired refine on - off', None)
    plot(summary, out / 'closed_loop.png')
    print('\n| model | relations | success | goal found | render | inference | node '
          '| execution | instruction to outcome |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for name, splits in summary.items():
        for relations, s in splits.items():
            cells = [f'{s[stage]["median"]:.3f}' if s[stage]['median'] is not None else '-'
                     for stage in STAGES]
            print(f'| {name} | {relations} | {100 * s["success_rate"]:.0f} % '
                  f'({s["episodes"]}) | {100 * s["goal_rate"]:.0f} % | ' + ' | '.join(cells)
                  + ' |')
    if paired:
        print('\n| model, relations | scenes | success on - off | bootstrap 95 % interval '
              '| better / worse |')
        print('| --- | --- | --- | --- | --- |')
        for key, p in paired.items():
            if p['scenes']:
                print(f'| {key} | {p["scenes"]} | {100 * p["mean"]:+.0f} pp | '
                      f'[{100 * p["ci95"][0]:+.0f}, {100 * p["ci95"][1]:+.0f}] pp | '
                      f'{p["better"]} / {p["worse"]} |')
    print(f'\nlatencies are medians in seconds; episodes, summary and plot in {out}/')


if __name__ == '__main__':
    main()
