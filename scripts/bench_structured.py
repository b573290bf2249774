"""
Time structured decoding against free decoding on trace-tiny (or a given model), on this CPU.

Each eval question is answered freely and constrained to the reply grammar, in alternating
order, ``--repeats`` times (the fastest of each counts: other processes share the CPU). Prints
JSON: ms per reply and per token with and without the constraint, the paired overhead (all
questions, and those whose reply the constraint left unchanged: pure cost), the same for the
process's CPU time (steadier on a shared machine), the time generation waited on the mask
per token, and the one-off tokenizer set-up and regex compilation. Run:
``python scripts/bench_structured.py [--model DIR] [--data DIR] [--questions N]``.
"""

import argparse
import json
import time

import numpy as np
from trace_ros.backends import constrained, make_backend
from trace_ros.core.answer_format import matches_grammar, reply_regex
from trace_ros.core.prompts import build_prompt
from trace_ros.core.where2place import load_questions
from trace_train.eval.evaluate import load_image


def record_processors() -> list:
    """Keep every logits processor the backend makes, for their mask timings."""
    made, original = [], constrained.RegexConstraint.processor

    def processor(self, regex, *args, **kwargs):
        made.append(original(self, regex, *args, **kwargs))
        return made[-1]

    constrained.RegexConstraint.processor = processor
    return made


def one_off_costs(backend, regex: str) -> dict:
    """Time a fresh tokenizer set-up and the regex's compilation (first request only)."""
    tokenizer = backend._tokenizer
    start = time.perf_counter()
    constraint = constrained.RegexConstraint(
        tokenizer, backend._model.config.get_text_config().vocab_size, backend._eos_ids)
    built = time.perf_counter()
    constraint.matcher(regex)
    compiled = time.perf_counter()
    constraint.matcher(regex)
    cached = time.perf_counter()
    return {'tokenizer_setup_ms': round((built - start) * 1e3, 2),
            'compile_ms': round((compiled - built) * 1e3, 2),
            'cached_copy_ms': round((cached - compiled) * 1e3, 3)}


def paired(free: list, constrained_: list) -> float:
    """Return the median of per-question relative differences, in percent."""
    if not free:
        return float('nan')
    return round(float(np.median([(c - f) / f for f, c in zip(free, constrained_)])) * 100, 2)


def main():
    """Run the benchmark and print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', default='models/trace-tiny')
    parser.add_argument('--data', default='data/eval/sim_w2p')
    parser.add_argument('--questions', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--style', choices=('cor', 'plain'), default='cor')
    parser.add_argument('--max-new-tokens', type=int, default=256)
    args = parser.parse_args()
    regex = reply_regex(args.style)
    made = record_processors()
    backend = make_backend('transformers', model=args.model, device='cpu',
                           max_new_tokens=args.max_new_tokens)
    results = {'model': args.model, 'style': args.style, **one_off_costs(backend, regex)}
    rows = []
    for question in load_questions(args.data)[:args.questions]:
        image = load_image(args.data, question)
        prompt = build_prompt(question['text'], args.style)
        best = {'free': None, 'constrained': None}
        for repeat in range(args.repeats):
            order = ('free', 'constrained') if repeat % 2 == 0 else ('constrained', 'free')
            for mode in order:
                start, cpu = time.perf_counter(), time.process_time()
                generation = backend.generate(image, prompt,
                                              regex=regex if mode == 'constrained' else '')
                elapsed = time.perf_counter() - start
                cpu = time.process_time() - cpu
                mask_s = made[-1].mask_s if mode == 'constrained' else 0.0
                if best[mode] is None or elapsed < best[mode][0]:
                    best[mode] = (elapsed, generation, mask_s, cpu)
        rows.append(best)
    summary = {}
    for mode in ('free', 'constrained'):
        seconds = np.array([row[mode][0] for row in rows])
        tokens = np.array([row[mode][1].num_tokens for row in rows])
        summary[mode] = {
            'ms_per_reply_median': round(float(np.median(seconds)) * 1e3, 1),
            'ms_per_reply_mean': round(float(np.mean(seconds)) * 1e3, 1),
            'tokens_per_reply_mean': round(float(np.mean(tokens)), 1),
            'ms_per_token_median': round(float(np.median(seconds / tokens)) * 1e3, 3),
            'cpu_ms_per_reply_median': round(float(np.median(
                [row[mode][3] for row in rows])) * 1e3, 1),
            'grammatical': int(sum(matches_grammar(row[mode][1].text, args.style)
                                   for row in rows)),
            'length_stops': int(sum(row[mode][1].finish_reason == 'length' for row in rows))}
    same = [row for row in rows if row['free'][1].text == row['constrained'][1].text]
    mask_ms = [row['constrained'][2] / row['constrained'][1].num_tokens * 1e3 for row in rows]
    results.update(summary, questions=len(rows), unchanged_replies=len(same), overhead={
        'per_reply_pct_all': paired([r['free'][0] for r in rows],
                                    [r['constrained'][0] for r in rows]),
        'per_reply_pct_unchanged': paired([r['free'][0] for r in same],
                                          [r['constrained'][0] for r in same]),
        'cpu_per_reply_pct_all': paired([r['free'][3] for r in rows],
                                        [r['constrained'][3] for r in rows]),
        'per_token_pct_all': paired(
            [r['free'][0] / r['free'][1].num_tokens for r in rows],
            [r['constrained'][0] / r['constrained'][1].num_tokens for r in rows]),
        'mask_ms_per_token_median': round(float(np.median(mask_ms)), 4),
        'mask_pct_of_free_token': round(float(np.median(mask_ms)) / summary['free'][
            'ms_per_token_median'] * 100, 2)})
    backend.close()
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
