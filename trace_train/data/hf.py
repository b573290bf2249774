"""
Load generated splits and Where2Place folders as Hugging Face ``datasets.Dataset``.

Images (and masks) are ``datasets.Image`` columns decoded lazily to PIL images; nested
ground truth whose keys vary per relation (region, facts, scene) is kept as JSON text.
"""

import json
import pathlib
from typing import Iterable, Optional

import datasets
from trace_ros.core.where2place import load_questions, mask_path

_JSON_FIELDS = ('region', 'facts', 'scene')


def _with_images(rows, columns) -> datasets.Dataset:
    keys = list(dict.fromkeys(k for row in rows for k in row))  # from_list reads row 0's only
    dataset = datasets.Dataset.from_list([{k: row.get(k) for k in keys} for row in rows])
    for column in columns:
        dataset = dataset.cast_column(column, datasets.Image())
    return dataset


def load_llava(folder, variant: str = 'cor',
               kinds: Optional[Iterable[str]] = None) -> datasets.Dataset:
    """Load the LLaVA conversations of a split (``llava_cor.json``/``llava_plain.json``)."""
    folder = pathlib.Path(folder)
    rows = json.loads((folder / f'llava_{variant}.json').read_text())
    if kinds is not None:
        rows = [r for r in rows if r['kind'] in set(kinds)]
    for row in rows:
        row['image'] = str(folder / row['image'])
    return _with_images(rows, ['image'])


def load_samples(folder) -> datasets.Dataset:
    """Load every sample of a generated split with its ground truth (``samples.jsonl``)."""
    folder = pathlib.Path(folder)
    rows = []
    with open(folder / 'samples.jsonl', encoding='utf-8') as file:
        for line in file:
            row = json.loads(line)
            for key in ('image', 'mask', 'dense'):
                if row.get(key):
                    row[key] = str(folder / row[key])
            for key in _JSON_FIELDS:
                row[key] = json.dumps(row.get(key))
            rows.append(row)
    return _with_images(rows, ['image'] + (['mask'] if rows and rows[0].get('mask') else []))


def load_where2place(folder) -> datasets.Dataset:
    """Load a Where2Place-layout folder (ours or the original) with image and mask columns."""
    folder = pathlib.Path(folder)
    rows = []
    for index, question in enumerate(load_questions(str(folder))):
        row = dict(question)
        row['image'] = str(folder / 'images' / question['image'])
        row['mask'] = mask_path(str(folder), question, index)
        for key in _JSON_FIELDS:
            if key in row:
                row[key] = json.dumps(row[key])
        rows.append(row)
    return _with_images(rows, ['image', 'mask'])
