"""
The TRACE ablation: accuracy against the fraction of training answers that carry the CoR.

``python -m trace_train.ablation --model BASE --data DATA --out out/ablation --fractions 0 0.5 1``
fine-tunes ``BASE`` once per fraction on the same samples (``finetune --cor-fraction``: the same
data budget, only the share of reasoning changes), evaluates every model on each ``--eval``
folder (the CoR prompt, or the answer-only prompt for fraction 0), and plots accuracy against
the fraction (``ablation.png``, ``ablation.json``). Finished fractions are skipped (an ``--eval``
folder added later is evaluated alone), so runs on disjoint fractions may go in parallel into
one ``--out`` and a last call plots them all.
``ablation_amount.png`` plots accuracy against the number of CoR answers trained on, for this
run and the earlier ablation folders given with ``--compare`` (other data budgets).
"""

import argparse
import json
import pathlib

from trace_train import finetune
from trace_train.eval import evaluate

DEFAULT_EVAL = ('data/eval/sim_w2p', 'data/eval/sim_w2p_hard')


def run_fraction(args, fraction: float) -> dict:
    """Fine-tune and evaluate one fraction (or load its results); return its accuracies."""
    run = pathlib.Path(args.out) / f'cor_{fraction:g}'
    result_file = run / 'result.json'
    style = 'plain' if fraction == 0 else 'cor'
    result = {'cor_fraction': fraction, 'prompt_style': style, 'accuracy': {}}
    if result_file.exists():  # evaluate only the folders it was not evaluated on
        result = json.loads(result_file.read_text())
    elif not (run / 'final').exists():
        finetune.main(['--model', args.model, '--data', *args.data, '--output_dir', str(run),
                       '--cor-fraction', str(fraction), *args.finetune_args])
    for folder in args.eval:
        name = pathlib.Path(folder).name
        if name in result['accuracy']:
            continue
        metrics = evaluate.main(['--data', folder, '--out', str(run / f'eval_{name}'),
                                 '--model', str(run / 'final'), '--device', 'cpu',
                                 '--prompt-style', style,
                                 *(['--limit', str(args.eval_limit)] if args.eval_limit else [])])
        result['accuracy'][name] = metrics['accuracy']
        result[f'parse_failure_rate_{name}'] = metrics['parse_failure_rate']
    result_file.write_text(json.dumps(result, indent=2) + '\n')
    return result


def common_splits(results: list) -> list:
    """Return the eval folders every result was evaluated on, in the first one's order."""
    return [name for name in (results[0]['accuracy'] if results else {})
            if all(name in result['accuracy'] for result in results)]


def split_scores(run: pathlib.Path, split: str) -> dict:
    """Return the per-question scores of one fraction's evaluation on ``split``."""
    return json.loads((run / f'eval_{split}' / 'metrics.json').read_text())['scores']


def add_differences(out: pathlib.Path, results: list) -> None:
    """
    Add each fraction's accuracy difference to answer-only with its 95 % interval.

    Paired over the questions both answered (``evaluate.bootstrap_interval``); needs the
    answer-only fraction (0) in ``out``.
    """
    if not any(r['cor_fraction'] == 0 for r in results):
        return
    for result in results:
        run = out / f'cor_{result["cor_fraction"]:g}'
        result['vs_answer_only'] = {}
        for split in result['accuracy']:
            mine, base = split_scores(run, split), split_scores(out / 'cor_0', split)
            keys = sorted(set(mine) & set(base))
            pairs = [(mine[k], base[k]) for k in keys]
            result['vs_answer_only'][split] = {
                'difference': sum(a - b for a, b in pairs) / max(1, len(pairs)),
                'ci95': evaluate.bootstrap_interval(*zip(*pairs)) if pairs else None}


def cor_samples_seen(run: pathlib.Path) -> float:
    """Return how many CoR answers a fraction's fine-tuning trained on (its train summary)."""
    summary = json.loads((run / 'train_summary.json').read_text())
    args = summary['args']  # TrainingArguments' names, or the CLI's before the recipes
    seen = summary['steps'] * args.get('per_device_train_batch_size', args.get('batch_size')) \
        * args.get('gradient_accumulation_steps', args.get('grad_accum'))
    return seen * summary['cor_samples'] / summary['samples']


def plot_amount(folders: list, path: pathlib.Path) -> None:
    """Accuracy against the CoR answers trained on; one line per folder and eval split."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    figure, axis = pyplot.subplots(figsize=(8.0, 3.8))
    for colour, folder in enumerate(map(pathlib.Path, folders)):
        runs = sorted(((json.loads(p.read_text()), p.parent)
                       for p in folder.glob('cor_*/result.json')
                       if (p.parent / 'train_summary.json').exists()),
                      key=lambda run: run[0]['cor_fraction'])
        for split, style in zip(common_splits([result for result, _ in runs]),
                                ('o-', 's--', '^:')):
            axis.plot([cor_samples_seen(run) for _, run in runs],
                      [100 * result['accuracy'][split] for result, _ in runs], style,
                      color=f'C{colour}', label=f'{folder.name}: {split}')
    axis.set_xlabel('CoR answers trained on')
    axis.set_ylabel('accuracy (%)')
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def plot(results: list, path: pathlib.Path) -> None:
    """Accuracy per eval folder against the CoR fraction."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    results = sorted(results, key=lambda r: r['cor_fraction'])
    figure, axis = pyplot.subplots(figsize=(4.5, 3.2))
    for name in common_splits(results):
        axis.plot([r['cor_fraction'] for r in results],
                  [100 * r['accuracy'][name] for r in results], marker='o', label=name)
    axis.set_xlabel('fraction of training answers with CoR')
    axis.set_ylabel('accuracy (%)')
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def main(argv=None) -> list:
    """Command line; unknown options go to ``trace_train.finetune``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', required=True, help='base model directory')
    parser.add_argument('--data', nargs='+', required=True, help='TRACE data folders')
    parser.add_argument('--out', required=True)
    parser.add_argument('--fractions', type=float, nargs='+', default=[0.0, 0.5, 1.0])
    parser.add_argument('--eval', nargs='+', default=list(DEFAULT_EVAL))
    parser.add_argument('--eval-limit', type=int, default=None, help='first N questions only')
    parser.add_argument('--compare', nargs='*', default=[],
                        help='earlier ablation folders for ablation_amount.png')
    args, args.finetune_args = parser.parse_known_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [run_fraction(args, f) for f in args.fractions]
    done = [json.loads(p.read_text()) for p in sorted(out.glob('cor_*/result.json'))]
    add_differences(out, done)
    (out / 'ablation.json').write_text(json.dumps(done, indent=2) + '\n')
    plot(done, out / 'ablation.png')
    plot_amount([out, *args.compare], out / 'ablation_amount.png')
    print(json.dumps(results, indent=2))
    return results


if __name__ == '__main__':
    main()
