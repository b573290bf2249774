"""The fine-tuning CLI on the tiny LLaVA: reply-only labels, CoR fraction, LoRA/full, reload."""

import json
import pathlib
import shutil

import numpy as np
from PIL import Image
import pytest
from tiny_model import tiny_model_dir
import torch
from trace_ros.backends import make_backend
from trace_train import finetune
from trace_train.eval import ablation
from trace_train.train.collator import ChatCollator, COORD_KEYS
from trace_train.train.samples import load_samples
from transformers import AutoProcessor
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200)]


def conversation(index: int, prompt: str, answer: str) -> dict:
    """Return one LLaVA-format sample on image ``index``."""
    return {'id': f'train_{index:06d}_q0', 'image': f'images/{index:06d}.jpg', 'kind': 'placement',
            'conversations': [{'from': 'human', 'value': f'<image>\n{prompt}'},
                              {'from': 'gpt', 'value': answer}]}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> pathlib.Path:
    """Write a TRACE-layout folder: coloured images, CoR and plain conversations."""
    folder = tmp_path_factory.mktemp('trace_data')
    (folder / 'images').mkdir()
    cor, plain = [], []
    for index, colour in enumerate(COLOURS):
        image = Image.new('RGB', (64, 48), colour)
        image.paste((255, 255, 255), (8 * index, 10, 8 * index + 12, 22))
        image.save(folder / 'images' / f'{index:06d}.jpg')
        points = f'[({0.1 + 0.15 * index:.3f}, {0.8 - 0.1 * index:.3f}), (0.5{index}1, 0.250)]'
        instruction = f'Place the cup left of plate {index}.'
        cor.append(conversation(index, f'{instruction} Reason first.',
                                f'The plate is at (0.{index}00, 0.500). Answer: {points}'))
        plain.append(conversation(index, f'{instruction} Answer with points.', points))
    (folder / 'llava_cor.json').write_text(json.dumps(cor))
    (folder / 'llava_plain.json').write_text(json.dumps(plain))
    return folder


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> pathlib.Path:
    """Copy the shared tiny model, so training never touches it."""
    return shutil.copytree(tiny_model_dir(), tmp_path_factory.mktemp('base') / 'tiny-llava')


@pytest.fixture(scope='module')
def full_runs(data_dir, model_dir, tmp_path_factory) -> dict:
    """Fully fine-tune 20 steps without and with the coordinate L1 (weight 10)."""
    runs = {}
    for weight in (0, 10):
        out = tmp_path_factory.mktemp('full') / f'coord_{weight}'
        runs[weight] = out, finetune_run(model_dir, data_dir, out, '--method', 'full',
                                         '--max-steps', '20', '--learning-rate', '1e-3',
                                         '--coord-l1', str(weight))
    return runs


def finetune_run(model_dir, data_dir, out, *options) -> dict:
    """Fine-tune the tiny model on one thread; return the training summary."""
    return finetune.main(['--model', str(model_dir), '--data', str(data_dir),
                          '--output_dir', str(out), '--per_device_train_batch_size', '2',
                          '--logging-steps', '1', '--threads', '1',
                          '--lora-r', '16', '--lora-alpha', '32', '--cor-fraction', '0.5',
                          *options])


def assert_loss_falls(summary: dict) -> None:
    """Check the mean of the last logged losses is below the first."""
    losses = summary['losses']
    assert np.mean(losses[-5:]) < losses[0] - 0.5, losses


def assert_backend_answers(final: str, data_dir: pathlib.Path) -> None:
    """Load ``final`` through the node's transformers backend and answer on a data image."""
    with Image.open(data_dir / 'images' / '000000.jpg') as image:
        array = np.asarray(image.convert('RGB'))
    with make_backend('transformers', model=final, device='cpu', max_new_tokens=8) as backend:
        generation = backend.generate(array, 'Place the cup left of plate 0. Answer with points.')
    assert generation.text and 0 < generation.num_tokens <= 8
    assert generation.model_id == 'final'


def test_cor_fraction_picks_the_versions(data_dir):
    ids = [f'train_{i:06d}_q0' for i in range(len(COLOURS))]
    none = load_samples([str(data_dir)], 0.0)
    every = load_samples([str(data_dir)], 1.0)
    assert [s['id'] for s in none] == [s['id'] for s in every] == ids
    assert not any(s['cor'] or 'Answer:' in s['answer'] for s in none)
    assert all(s['cor'] and 'Answer:' in s['answer'] for s in every)
    assert all(not s['prompt'].startswith('<image>') for s in none + every)
    half = [s['cor'] for s in load_samples([str(data_dir)], 0.5)]
    assert half == [s['cor'] for s in load_samples([str(data_dir)], 0.5)]
    assert 0 < sum(half) < len(half)
    more = [s['cor'] for s in load_samples([str(data_dir)], 0.9)]
    assert all(m for h, m in zip(half, more) if h)  # a larger fraction only adds CoR samples
    picked = {f: [s['id'] for s in load_samples([str(data_dir)], f, max_samples=3)]
              for f in (0.0, 0.5, 1.0)}
    assert len(picked[0.0]) == 3 and picked[0.0] == picked[0.5] == picked[1.0]


def test_labels_cover_only_the_reply_and_digits_are_located(data_dir, model_dir):
    processor = AutoProcessor.from_pretrained(model_dir)
    collator = ChatCollator(processor)
    samples = load_samples([str(data_dir)], 0.5)[:3]
    batch = collator(samples)
    tokenizer = processor.tokenizer
    assert set(batch) == {'input_ids', 'attention_mask', 'pixel_values', 'labels',
                          *COORD_KEYS}
    for row, sample in enumerate(samples):
        ids, labels = batch['input_ids'][row], batch['labels'][row]
        mask = batch['attention_mask'][row]
        length = int(mask.sum())
        assert mask[:length].all() and not mask[length:].any()  # right padding
        reply = tokenizer(sample['answer'] + '<|im_end|>', add_special_tokens=False)['input_ids']
        start = length - len(reply)
        assert ids[start:length].tolist() == reply
        assert (labels[start:length] == ids[start:length]).all()
        assert (labels[:start] == -100).all() and (labels[length:] == -100).all()
        assert tokenizer.decode(ids[:start]).endswith('<|im_start|>assistant\n')
    digits = torch.tensor(collator.digit_ids)
    predicted = batch['input_ids'][batch['coord_batch'], batch['coord_position'] + 1]
    assert torch.isin(predicted, digits).all()
    values = torch.zeros_like(batch['coord_target']).index_add(
        0, batch['coord_number'],
        (predicted - digits[0]).float() * 10.0 ** -batch['coord_place'].float())
    assert torch.allclose(values, batch['coord_target'])
    assert len(batch['coord_target']) == 4 * len(samples)  # the answer list's numbers only


def test_lora_learns_resumes_and_reloads(data_dir, model_dir, tmp_path):
    out = tmp_path / 'lora'
    summary = finetune_run(model_dir, data_dir, out, '--max-steps', '20', '--save-steps', '10',
                           '--learning-rate', '3e-3')
    assert summary['steps'] == 20 and summary['samples'] == len(COLOURS)
    assert summary['trainable_parameters'] < summary['parameters'] / 4
    assert_loss_falls(summary)
    written = json.loads((out / 'train_summary.json').read_text())
    assert written['last_loss'] == summary['losses'][-1]
    assert (out / 'adapter' / 'adapter_config.json').exists()
    assert list((out / 'runs').glob('*/events.out.tfevents.*'))
    resumed = finetune_run(model_dir, data_dir, out, '--max-steps', '24', '--save-steps', '10',
                           '--learning-rate', '3e-3', '--resume')
    assert resumed['resumed_from'] == str(out / 'checkpoint-20') and resumed['steps'] == 24
    assert_backend_answers(resumed['final'], data_dir)


def test_full_finetuning_learns_and_reloads(full_runs, data_dir):
    out, summary = full_runs[0]
    assert_loss_falls(summary)
    assert not (out / 'adapter').exists()
    assert_backend_answers(summary['final'], data_dir)


def test_coordinate_l1_is_added_logged_and_lowered(full_runs):
    def logs(weight):
        state = json.loads((full_runs[weight][0] / 'checkpoint-20' / 'trainer_state.json')
                           .read_text())
        return [entry for entry in state['log_history'] if 'loss' in entry]

    assert all(e['loss'] == pytest.approx(e['ce_loss'] + 10 * e['coord_l1'], rel=1e-3)
               for e in logs(10))
    assert all(e['loss'] == pytest.approx(e['ce_loss'], rel=1e-6) for e in logs(0))
    assert_loss_falls(full_runs[10][1])
    late_error = {w: np.mean([e['coord_l1'] for e in logs(w)[-5:]]) for w in (0, 10)}
    assert late_error[10] < late_error[0] - 0.05, late_error


def test_help_and_the_multi_gpu_configs(capsys):
    with pytest.raises(SystemExit) as exited:
        finetune.main(['--help'])
    assert exited.value.code == 0
    assert '--cor-fraction' in capsys.readouterr().out
    accelerate = yaml.safe_load((ROOT / 'config/accelerate/multi_gpu.yaml').read_text())
    assert accelerate['distributed_type'] == 'MULTI_GPU'
    deepspeed = json.loads((ROOT / 'config/deepspeed/zero2.json').read_text())
    assert deepspeed['zero_optimization']['stage'] == 2
    assert deepspeed['train_micro_batch_size_per_gpu'] == 'auto'


def test_ablation_trains_evaluates_and_plots_each_fraction(data_dir, model_dir, tmp_path):
    args = ['--model', str(model_dir), '--data', str(data_dir), '--out', str(tmp_path),
            '--fractions', '0', '1', '--eval', str(ROOT / 'data' / 'eval' / 'sim_w2p'),
            '--eval-limit', '2', '--method', 'full', '--max-steps', '2', '--threads', '1',
            '--report-to', 'none']
    results = ablation.main(args)
    assert [r['cor_fraction'] for r in results] == [0.0, 1.0]
    assert [r['prompt_style'] for r in results] == ['plain', 'cor']
    assert all(0.0 <= r['accuracy']['sim_w2p'] <= 1.0 for r in results)
    summary = json.loads((tmp_path / 'cor_1' / 'train_summary.json').read_text())
    assert summary['steps'] == 2
    assert (tmp_path / 'ablation.png').stat().st_size > 0
    assert (tmp_path / 'ablation_amount.png').stat().st_size > 0
    seen = 2 * summary['args']['per_device_train_batch_size']  # 2 steps
    assert ablation.cor_samples_seen(tmp_path / 'cor_1') == seen
    assert ablation.cor_samples_seen(tmp_path / 'cor_0') == 0
    done = json.loads((tmp_path / 'ablation.json').read_text())
    low, high = done[1]['vs_answer_only']['sim_w2p']['ci95']
    assert low <= done[1]['vs_answer_only']['sim_w2p']['difference'] <= high
    assert done[0]['vs_answer_only']['sim_w2p'] == {'difference': 0.0, 'ci95': [0.0, 0.0]}
    assert ablation.main(args) == results  # finished fractions are loaded, not retrained
    first = (tmp_path / 'cor_1' / 'eval_sim_w2p' / 'metrics.json').stat().st_mtime_ns
    more = ablation.main(args + ['--eval', str(ROOT / 'data' / 'eval' / 'sim_w2p_hard')])
    assert all(set(r['accuracy']) == {'sim_w2p', 'sim_w2p_hard'} for r in more)
    assert [r['accuracy']['sim_w2p'] for r in more] == [r['accuracy']['sim_w2p'] for r in results]
    assert (tmp_path / 'cor_1' / 'eval_sim_w2p' / 'metrics.json').stat().st_mtime_ns == first


def test_reference_targets_are_the_point_tokens_and_the_patches_around_it(model_dir):
    collator = ChatCollator(AutoProcessor.from_pretrained(model_dir), 0.08)
    answer = ('1. Goal subtype: object reference.\n2. Reference: the red cup, at (0.250, 0.750).'
              '\nAnswer: [(0.100, 0.200)]')
    batch = collator([{'image': Image.new('RGB', (64, 48)), 'prompt': 'Put it left of the cup.',
                       'answer': answer}])
    tokenizer = collator.tokenizer
    ids = batch['input_ids'][0]
    predicted = tokenizer.decode(ids[batch['reference_position'] + 1])
    assert predicted.strip() == '(0.250, 0.750)'
    image = (ids == collator.image_id).nonzero().squeeze(1)
    grid = round(len(image) ** 0.5)
    assert grid * grid == len(image)
    target = batch['reference_target']
    assert target.shape == (len(batch['reference_position']), len(ids))
    assert (target == target[0]).all() and not target[0, ~torch.isin(
        torch.arange(len(ids)), image)].any()  # the same image tokens for every point token
    rows, cols = np.divmod(np.flatnonzero(target[0, image].numpy()), grid)
    assert (int(0.75 * grid), int(0.25 * grid)) in set(zip(rows.tolist(), cols.tolist()))
    centres = np.stack([(cols + 0.5) / grid, (rows + 0.5) / grid], axis=1)
    distances = np.linalg.norm(centres - [0.25, 0.75], axis=1)
    assert (distances <= max(0.08, 0.75 / grid)).all()
    plain = collator([{'image': Image.new('RGB', (64, 48)), 'prompt': 'Where?',
                       'answer': '[(0.100, 0.200)]'}])
    assert plain['reference_position'].numel() == 0  # nothing to supervise: no reference


def test_the_target_area_centre_is_supervised_at_its_own_patches(model_dir):
    collator = ChatCollator(AutoProcessor.from_pretrained(model_dir), 0.08)
    answer = ('1. Goal subtype: object reference.\n2. Reference: the red cup, at (0.250, 0.750).'
              '\n3. Target area: left of the red cup, centred at (0.700, 0.300).'
              '\nAnswer: [(0.700, 0.300)]')
    batch = collator([{'image': Image.new('RGB', (64, 48)), 'prompt': 'Put it left of the cup.',
                       'answer': answer}])
    ids, positions = batch['input_ids'][0], batch['reference_position']
    assert collator.tokenizer.decode(ids[positions + 1]).replace(' ', '') == \
        '(0.250,0.750)(0.700,0.300)'  # the answer's points are not supervised
    image = (ids == collator.image_id).nonzero().squeeze(1)
    grid = round(len(image) ** 0.5)
    first, last = batch['reference_target'][0], batch['reference_target'][-1]
    rows, cols = np.divmod(np.flatnonzero(last[image].numpy()), grid)
    assert (int(0.3 * grid), int(0.7 * grid)) in set(zip(rows.tolist(), cols.tolist()))
    assert not (first & last).any()  # two points far apart: disjoint patches


def test_reference_attention_is_added_logged_and_learned(data_dir, model_dir, tmp_path):
    out = tmp_path / 'reference'
    summary = finetune_run(model_dir, data_dir, out, '--method', 'full', '--max-steps', '20',
                           '--learning-rate', '1e-3', '--reference-attention', '1',
                           '--cor-fraction', '1')
    state = json.loads((out / 'checkpoint-20' / 'trainer_state.json').read_text())
    logs = [entry for entry in state['log_history'] if 'loss' in entry]
    assert all(e['loss'] == pytest.approx(e['ce_loss'] + e['reference_attention'], rel=1e-3)
               for e in logs)
    attention = [e['reference_attention'] for e in logs]
    assert np.mean(attention[-5:]) < attention[0] - 0.2, attention
    assert_backend_answers(summary['final'], data_dir)  # saved stock, reloads (sdpa)


@pytest.mark.parametrize('method', ['full', 'lora'])
def test_freeze_projector_keeps_the_image_path_and_trains_the_decoder(
        data_dir, model_dir, tmp_path, method):
    from safetensors.torch import load_file

    summary = finetune_run(model_dir, data_dir, tmp_path, '--method', method, '--max-steps',
                           '3', '--learning-rate', '1e-2', '--freeze-projector')
    before = load_file(str(model_dir / 'model.safetensors'))
    after = load_file(str(pathlib.Path(summary['final']) / 'model.safetensors'))
    image_path = [k for k in before if 'multi_modal_projector' in k or 'vision_tower' in k]
    decoder = [k for k in before if 'language_model' in k and k.endswith('proj.weight')]
    assert image_path and decoder
    assert all(torch.equal(before[k], after[k]) for k in image_path)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
