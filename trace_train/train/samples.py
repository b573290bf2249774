"""Training samples from the TRACE LLaVA files: the CoR or the plain answer of each sample."""

import json
import pathlib
import random

from trace_ros.core.answer_format import llava_prompt


def load_samples(folders: list[str], cor_fraction: float, seed: int = 0,
                 max_samples: int | None = None) -> list[dict]:
    """
    Read the folders' conversations and pick the CoR or the plain version of each sample.

    The choice depends only on (seed, sample id), and ``max_samples`` picks the same samples at
    any fraction, so runs at different fractions train on the same data budget.
    """
    samples = []
    for folder in map(pathlib.Path, folders):
        cor = json.loads((folder / 'llava_cor.json').read_text())
        plain = {row['id']: row for row in json.loads((folder / 'llava_plain.json').read_text())}
        if {row['id'] for row in cor} != set(plain):
            raise ValueError(f'{folder}: llava_cor.json and llava_plain.json hold other ids')
        for row in cor:
            use_cor = random.Random(f'{seed}/{row["id"]}').random() < cor_fraction
            human, gpt = (row if use_cor else plain[row['id']])['conversations'][:2]
            samples.append({'id': row['id'], 'image': str(folder / row['image']), 'cor': use_cor,
                            'prompt': llava_prompt(human['value']),
                            'answer': gpt['value']})
    if max_samples is not None and max_samples < len(samples):
        keep = sorted(random.Random(seed).sample(range(len(samples)), max_samples))
        samples = [samples[i] for i in keep]
    return samples
