"""Plumbing of the grounding stages: dense targets, a few training steps, stock reloading."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip('mujoco')
transformers = pytest.importorskip('transformers')

from experiments.grounding import data as gdata  # noqa: E402, I100
from experiments.grounding import dense, localize, locate  # noqa: E402
from experiments.grounding.render import render_dataset  # noqa: E402

SIZE, PATCH = 64, 8


@pytest.fixture(scope='module')
def small_set():
    arrays = render_dataset(0, 1, 2, 96, 72)
    return gdata.GroundingSet(
        rgb=np.stack([gdata.resize_rgb(x, SIZE) for x in arrays['rgb']]),
        labels=np.stack([gdata.resize_labels(x, SIZE) for x in arrays['labels']]),
        category=arrays['category'].astype(np.int64), colour=arrays['colour'].astype(np.int64))


def test_dense_targets(small_set):
    labels, category, colour = small_set.labels[0], small_set.category[0], small_set.colour[0]
    assert labels.shape == (SIZE, SIZE)
    assert set(np.unique(labels)) >= {0, 1, 3}
    t = gdata.dense_targets(labels, category, colour, PATCH)
    grid = SIZE // PATCH
    assert t['cls'].shape == (grid * grid, gdata.NUM_CLASSES)
    assert t['col'].shape == (grid * grid, gdata.NUM_COLOURS)
    assert np.allclose(t['cls'].sum(1), 1) and np.allclose(t['col'].sum(1), 1)
    assert t['row'][grid] == 1 and t['column'][grid + 2] == 2
    # The patch most covered by object 0 is labelled with its category and colour.
    obj = (labels == gdata.FIRST_OBJECT).reshape(grid, PATCH, grid, PATCH).mean((1, 3))
    p = int(obj.argmax())
    assert t['cls'][p, gdata.FIRST_OBJECT + category[0]] == pytest.approx(obj.flat[p])
    assert t['col'][p, colour[0]] >= obj.flat[p] - 1e-6
    assert t['has_object'][p]
    # The offset points from the patch centre to the object's centroid.
    u, v, _ = gdata.object_centroids(labels)[gdata.FIRST_OBJECT]
    centre = ((p % grid + 0.5) * PATCH, (p // grid + 0.5) * PATCH)
    if gdata.np.bincount(labels.reshape(grid, PATCH, grid, PATCH).transpose(
            0, 2, 1, 3).reshape(grid * grid, -1)[p]).argmax() == gdata.FIRST_OBJECT:
        assert np.allclose(t['offset'][p] * PATCH, (u + 0.5 - centre[0], v + 0.5 - centre[1]),
                           atol=1e-4)


def test_dense_steps_reduce_loss(small_set):
    torch.manual_seed(0)
    tower = transformers.CLIPVisionModel(dense.vision_config(SIZE, PATCH, 32, 2, 2, 64))
    heads = dense.DenseHeads(32, SIZE // PATCH)
    opt = torch.optim.Adam(list(tower.parameters()) + list(heads.parameters()), lr=3e-3)
    pixels = gdata.pixel_values(small_set.rgb)
    tgt = gdata.batch_targets(small_set.labels, small_set.category, small_set.colour, PATCH)
    losses = []
    for _ in range(15):
        loss, _ = dense.dense_loss(heads(dense.patch_features(tower, pixels)), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]


def test_localize_steps_and_stock_reload(small_set, tmp_path):
    args = localize.LocalizeConfig(train='unused.npz', out=str(tmp_path), image_size=SIZE,
                                   patch_size=PATCH, vocab_size=300, text_layers=1,
                                   text_hidden=64)
    cfg, tokenizer, processor, model, stats = localize.build(args, small_set)
    assert stats['feature_token_spread'] > 0
    builder = locate.SequenceBuilder(tokenizer, cfg.num_image_tokens)
    rng = np.random.default_rng(0)
    batch = locate.sample_batch(small_set, np.arange(len(small_set)), rng, builder, 2,
                                augment=False)
    pixels, ids, labels, mask = batch
    assert int((ids == model.config.image_token_id).sum()) == len(ids) * (SIZE // PATCH) ** 2
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    losses = []
    for _ in range(12):
        loss = model(input_ids=ids, attention_mask=mask, pixel_values=pixels,
                     labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.75 * losses[0]
    model.eval()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = transformers.AutoModelForImageTextToText.from_pretrained(tmp_path)
    proc = transformers.AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded).__name__ == 'LlavaForConditionalGeneration'
    prompt = proc.apply_chat_template(
        [{'role': 'user', 'content': [{'type': 'image'},
                                      {'type': 'text', 'text': 'Where is the red mug?'}]}],
        add_generation_prompt=True)
    inputs = proc(text=[prompt], images=[small_set.rgb[0]], return_tensors='pt')
    assert int((inputs['input_ids'] == loaded.config.image_token_id).sum()) == \
        (SIZE // PATCH) ** 2
    assert float(inputs['pixel_values'].std()) > 0.1
    with torch.no_grad():
        ref = model(**inputs).logits
        got = loaded(**inputs).logits
    assert torch.allclose(ref, got, atol=1e-5)


def test_trace_answer_style_is_the_dataset_locate_sentence():
    from trace_ros.core.answer_format import format_locate_answer
    question = locate.question(0, 0)
    label = question.removeprefix('Where is the ').removesuffix('?')
    point = (0.4204, 0.5512)
    assert locate.answer_text(point, question, 'trace') == format_locate_answer(label, point)
    assert locate.answer_text(point, question, 'trace').endswith(' is at (0.420, 0.551).')
    assert locate.answer_text(point, question, 'points') == locate.answer(point)


def test_localize_run_supervises_attention_and_saves_a_stock_model(tmp_path):
    arrays = render_dataset(0, 1, 3, 96, 72)
    np.savez(tmp_path / 'train.npz', **arrays)
    out = tmp_path / 'loc'
    localize.main(['--train', str(tmp_path / 'train.npz'), '--out', str(out),
                   '--image_size', str(SIZE), '--patch_size', str(PATCH), '--vocab_size', '300',
                   '--text_layers', '2', '--text_hidden', '64', '--steps', '3', '--batch', '2',
                   '--max_turns', '2', '--warmup', '1', '--attn_sup', '1'])
    log = [json.loads(line) for line in (out / 'train_log.jsonl').read_text().splitlines()]
    assert [entry['step'] for entry in log] == [0, 2]
    assert all(entry['attn_loss'] > 0 for entry in log)
    model = transformers.AutoModelForImageTextToText.from_pretrained(out)
    assert model.config.text_config.num_hidden_layers == 2
    assert not (out / 'grounding.json').exists() and not (out / 'tiny_vlm.json').exists()


def test_attention_targets_cover_the_object_patches_of_each_reply_position():
    ids = torch.tensor([[5, 9, 9, 9, 9, 7, 8, 8, 6]])
    frac = np.array([0.0, 0.5, 0.0, 1.0])
    batch, position, target = localize.attention_targets(ids, 9, [(0, 6, 8, frac)])
    assert batch.tolist() == [0, 0] and position.tolist() == [5, 6]
    assert target[0].nonzero().squeeze(1).tolist() == [2, 4]
    assert (target[0] == target[1]).all()
    assert localize.attention_targets(ids, 9, [(0, 6, 8, np.zeros(4))]) is None


def test_randomized_dense_dataset_trains_a_checkpoints_tower(tmp_path):
    from experiments.grounding.render import convert_dataset
    from trace_train.data import generate
    data_dir = tmp_path / 'random'
    generate.main(['--out', str(data_dir), '--scenes', '3', '--workers', '1', '--randomize',
                   '--max-side', '96', '--questions', '1', '--no-masks', '--dense'])
    arrays = convert_dataset([data_dir], SIZE)
    assert arrays['rgb'].shape[1:] == (SIZE, SIZE, 3)
    assert arrays['labels'].shape[1:] == (SIZE, SIZE)
    for labels, category, colour, stem in zip(arrays['labels'], arrays['category'],
                                              arrays['colour'], arrays['scene_seed']):
        table = json.loads((data_dir / 'dense' / f'{stem:06d}.json').read_text())['labels']
        objects = [int(k) for k in table if int(k) >= gdata.FIRST_OBJECT]
        assert objects and set(np.unique(labels)) & set(objects)
        for label in objects:
            entry, index = table[str(label)], label - gdata.FIRST_OBJECT
            assert gdata.CLASS_NAMES[gdata.FIRST_OBJECT + category[index]] == entry['category']
            assert gdata.COLOUR_NAMES[colour[index]] == entry['colour']
        assert (category[len(objects):] == -1).all()
    np.savez(tmp_path / 'random.npz', **arrays)
    # A small stock checkpoint; its tower trains on the randomized views, the rest stays.
    init = tmp_path / 'loc'
    np.savez(tmp_path / 'default.npz', **render_dataset(0, 1, 3, 96, 72))
    localize.main(['--train', str(tmp_path / 'default.npz'), '--out', str(init),
                   '--image_size', str(SIZE), '--patch_size', str(PATCH), '--vocab_size', '300',
                   '--text_layers', '2', '--text_hidden', '64', '--steps', '1', '--batch', '2',
                   '--max_turns', '2', '--warmup', '1'])
    out = tmp_path / 'dense'
    metrics = dense.main(['--train', str(tmp_path / 'random.npz'),
                          '--eval', str(tmp_path / 'random.npz'), '--out', str(out),
                          '--init', str(init), '--steps', '3', '--batch', '2', '--warmup', '1',
                          '--eval_images', '2', '--probe_images', '2'])
    assert {'probe_init', 'probe_trained', 'probe_random'} <= set(metrics)
    before = transformers.AutoModelForImageTextToText.from_pretrained(init).state_dict()
    after = transformers.AutoModelForImageTextToText.from_pretrained(out / 'model').state_dict()
    assert before.keys() == after.keys()
    changed = {k for k in before  # saved in bf16, as the shipped models are
               if not torch.equal(before[k].to(torch.bfloat16), after[k].to(torch.bfloat16))}
    assert changed and all('vision_tower' in k for k in changed)
    assert transformers.AutoProcessor.from_pretrained(out / 'model') is not None
