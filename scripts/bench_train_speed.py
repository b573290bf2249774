"""
Training throughput of a tiny VLM on this CPU: fp32 vs bf16 autocast, threads, batch size.

python scripts/bench_train_speed.py --model models/trace-tiny --data DIR [--steps 6]
Times full forward + backward + AdamW steps on real samples of a data folder (the
collator finetune uses) and prints samples/s per setting, after one warm-up step each.
bf16 needs AVX512-BF16 (or AMX) to pay off on a CPU: the script prints what the CPU has.
"""

import argparse
import itertools
import pathlib
import time

import torch
from trace_train.train.collator import ChatCollator
from trace_train.train.samples import load_samples
from transformers import AutoModelForImageTextToText, AutoProcessor


def cpu_flags() -> str:
    """Return the CPU's bf16-related flags."""
    text = pathlib.Path('/proc/cpuinfo').read_text() if pathlib.Path('/proc/cpuinfo').exists() \
        else ''
    return ' '.join(f for f in ('avx512f', 'avx512_bf16', 'amx_bf16') if f' {f}' in text) or \
        'none'


def measure(model_dir: str, batches: list, threads: int, bf16: bool, steps: int) -> float:
    """Return samples/s of ``steps`` optimizer steps (after one warm-up step)."""
    torch.set_num_threads(threads)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    count, start = 0, None
    for index, batch in enumerate(itertools.islice(itertools.cycle(batches), steps + 1)):
        if index == 1:
            start, count = time.perf_counter(), 0
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = model(**{k: v for k, v in batch.items()
                            if k in ('input_ids', 'attention_mask', 'pixel_values',
                                     'labels')}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        count += batch['input_ids'].shape[0]
    return count / (time.perf_counter() - start)


def main() -> None:
    """Print samples/s for each (threads, batch size, precision)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', default='models/trace-tiny')
    parser.add_argument('--data', required=True, help='a folder from trace_train.data.generate')
    parser.add_argument('--steps', type=int, default=6)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[8, 16])
    args = parser.parse_args()
    processor = AutoProcessor.from_pretrained(args.model)
    collator = ChatCollator(processor)
    samples = load_samples([args.data], cor_fraction=1.0)
    print(f'CPU flags: {cpu_flags()}; torch {torch.__version__}')
    print('threads  batch  precision  samples/s  tokens/sample')
    for threads, batch_size in itertools.product(args.threads, args.batch_sizes):
        batches = [collator(samples[i:i + batch_size])
                   for i in range(0, batch_size * 3, batch_size)]
        tokens = batches[0]['input_ids'].shape[1]
        for bf16 in (False, True):
            rate = measure(args.model, batches, threads, bf16, args.steps)
            print(f'{threads:7d}  {batch_size:5d}  {"bf16" if bf16 else "fp32":9s}  '
                  f'{rate:9.1f}  {tokens:13d}', flush=True)


if __name__ == '__main__':
    main()
