"""Recipes reproduce models: the tiny recipe twice gives the same weights; every recipe parses."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

from experiments.grounding.dense import DenseConfig
from experiments.grounding.localize import LocalizeConfig
from PIL import Image
import pytest
from safetensors.torch import load_file
from tiny_model import tiny_model_dir
import torch
from trace_train.train.config import TraceTrainingConfig
from trace_train.train.recipe import parse_recipe
from transformers import AutoModelForImageTextToText
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / 'recipes').rglob('*.yaml'))


def write_data(folder: pathlib.Path, count: int = 4) -> None:
    """Write a TRACE-layout folder: images, CoR answers with a reference, plain answers."""
    (folder / 'images').mkdir(parents=True)
    cor, plain = [], []
    for index in range(count):
        image = Image.new('RGB', (64, 48), (40 * index, 200 - 40 * index, 90))
        image.paste((255, 255, 255), (12 * index, 10, 12 * index + 12, 22))
        image.save(folder / 'images' / f'{index:06d}.jpg')
        points = f'[({0.1 + 0.2 * index:.3f}, 0.600)]'
        reply = (f'1. Goal subtype: object reference.\n2. Reference: the box, at '
                 f'({0.1 + 0.2 * index:.3f}, 0.330).\nAnswer: {points}')
        for rows, answer in ((cor, reply), (plain, points)):
            rows.append({'id': f'train_{index:06d}_q0', 'image': f'images/{index:06d}.jpg',
                         'conversations': [
                             {'from': 'human', 'value': '<image>\nPut the cup below the box.'},
                             {'from': 'gpt', 'value': answer}]})
    (folder / 'llava_cor.json').write_text(json.dumps(cor))
    (folder / 'llava_plain.json').write_text(json.dumps(plain))


def finetune(recipe: pathlib.Path, model, data, out) -> None:
    """Run the fine-tuning command line on ``recipe`` in a fresh interpreter."""
    command = [sys.executable, '-m', 'trace_train.finetune', '--config', str(recipe),
               '--model', str(model), '--data', str(data), '--output_dir', str(out)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=300,
                   stdout=subprocess.DEVNULL)


def test_the_tiny_recipe_reproduces_its_model(tmp_path):
    model = shutil.copytree(tiny_model_dir(), tmp_path / 'base')
    write_data(tmp_path / 'data')
    recipe = ROOT / 'recipes' / 'tiny.yaml'
    for run in ('a', 'b'):
        finetune(recipe, model, tmp_path / 'data', tmp_path / run)
    summary = json.loads((tmp_path / 'a' / 'train_summary.json').read_text())
    settings = yaml.safe_load(recipe.read_text())
    assert summary['steps'] == settings['max_steps']
    assert summary['args']['lora_r'] == settings['lora_r']
    assert summary['args']['reference_attention'] == settings['reference_attention']
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path / 'a' / 'final')
    assert type(loaded).__name__ == 'LlavaForConditionalGeneration'
    first, second, base = (load_file(str(path / 'model.safetensors'))
                           for path in (tmp_path / 'a' / 'final', tmp_path / 'b' / 'final', model))
    assert first.keys() == second.keys() == base.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert any(not torch.equal(first[key], base[key]) for key in first)  # it did train


@pytest.mark.parametrize('recipe', RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_parses_and_counts_steps(recipe):
    keys = yaml.safe_load(recipe.read_text())
    if 'model' in keys:
        config = parse_recipe(TraceTrainingConfig, ['--config', str(recipe)])
        assert config.max_steps > 0  # a step count, never a wall-clock budget
        assert config.model == keys['model'] and config.data == keys['data']
    else:
        config = parse_recipe(LocalizeConfig if 'attn_sup' in keys else DenseConfig,
                              ['--config', str(recipe)])
        assert config.steps > 0
    normalized = {'report_to'}  # TrainingArguments turns 'none' into []
    assert all(getattr(config, key) == value for key, value in keys.items()
               if key not in normalized)


def test_the_command_line_overrides_the_recipe(tmp_path):
    recipe = ROOT / 'recipes' / 'tiny.yaml'
    config = parse_recipe(TraceTrainingConfig, ['--config', str(recipe), '--max-steps', '9',
                                                '--output_dir', str(tmp_path)])
    assert config.max_steps == 9 and config.output_dir == str(tmp_path)
    assert config.lora_r == yaml.safe_load(recipe.read_text())['lora_r']
    bad = tmp_path / 'bad.yaml'
    bad.write_text(recipe.read_text() + 'max_minutes: 5\n')
    with pytest.raises(SystemExit):
        parse_recipe(TraceTrainingConfig, ['--config', str(bad)])
