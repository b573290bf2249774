"""
Closed-loop benchmark: success rate and per-stage latency over real nodes, per model.

Each model runs the closed loop (``trace_ros.ros.closed_loop``: trace_sim -> trace_node ->
trace_goal_executor over DDS) on N seeded scenes with a task drawn from the normal relations
and one from the hard (held-out) relations. Prints a table of success rates and median
latencies per stage (render, inference, node overhead, execution, instruction to outcome),
and writes ``episodes.jsonl``, ``summary.json`` and ``closed_loop.png`` to ``--out``.

    python scripts/bench_closed_loop.py --scenes 20 \
        --model cor=out/ablation_8k/cor_1/final:cor \
        --model answer-only=out/ablation_8k/cor_0/final:plain
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
    summary = {}
    with open(out / 'episodes.jsonl', 'w') as log:
        for name, path, style in models:
            summary[name] = {}
            with ClosedLoop(model=path, prompt_style=style, domain_id=domain,
                            torch_threads=args.torch_threads,
                            randomize_world=args.randomize_world) as loop:
                for relations in args.relations:
                    episodes = []
                    seeds = range(args.seed, args.seed + args.scenes)
                    for seed in tqdm(seeds, desc=f'{name} {relations}', unit='scene'):
                        record = loop.run(seed, relations=relations).summary()
                        record.update(model=name, relations=relations)
                        log.write(json.dumps(record) + '\n')
                        log.flush()
                        episodes.append(record)
                    summary[name][relations] = summarize(episodes)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
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
    print(f'\nlatencies are medians in seconds; episodes, summary and plot in {out}/')


if __name__ == '__main__':
    main()
