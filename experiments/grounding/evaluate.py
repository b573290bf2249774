"""
Evaluate a localization checkpoint loaded the stock way, against baselines.

Loading goes through AutoProcessor + AutoModelForImageTextToText. Reported: pipeline checks,
point accuracy against baselines, and the real-vs-blank/shuffled image loss gap.
"""

import argparse
import json
import pathlib

from experiments.grounding import data as gdata
from experiments.grounding import locate
import numpy as np
import torch
from tqdm import tqdm
from trace_ros.core.answer_format import read_point, user_turn
from transformers import AutoModelForImageTextToText, AutoProcessor


@torch.no_grad()
def projector_stats(model, pixels: torch.Tensor) -> dict:
    """Mean magnitude vs per-token spread of the projected image tokens."""
    feats = model.model.get_image_features(pixel_values=pixels).pooler_output
    feats = torch.stack(list(feats)).flatten(0, 1)
    mean = feats.mean(0)
    return {'proj_mean_norm': float(mean.norm()),
            'proj_token_spread': float((feats - mean).norm(dim=-1).mean())}


def score(points, questions, labels):
    """Mean distance, in-mask hit rate and within-0.05 rate of points (None = miss)."""
    dist, hit, near, parsed = [], [], [], 0
    for point, (img, _, target, label) in zip(points, questions):
        if point is None:
            dist.append(np.sqrt(2))
            hit.append(False)
            near.append(False)
            continue
        parsed += 1
        d = float(np.hypot(point[0] - target[0], point[1] - target[1]))
        size = labels.shape[1]
        u = min(max(int(np.floor(point[0] * size)), 0), size - 1)
        v = min(max(int(np.floor(point[1] * size)), 0), size - 1)
        dist.append(d)
        hit.append(bool(labels[img, v, u] == label))
        near.append(d <= 0.05)
    return {'n': len(points), 'parse_rate': parsed / max(1, len(points)),
            'mean_dist': float(np.mean(dist)), 'median_dist': float(np.median(dist)),
            'in_mask': float(np.mean(hit)), 'within_0.05': float(np.mean(near))}


def eval_questions(eval_set):
    """(image index, question, target point, object label) for every visible object."""
    out = []
    for i in range(len(eval_set)):
        for q, p, label in locate.targets(eval_set.labels[i], eval_set.category[i],
                                          eval_set.colour[i]):
            out.append((i, q, p, label))
    return out


@torch.no_grad()
def generate_points(model, processor, images, questions, batch=16, question_first=False):
    """Greedy answers through the processor's chat template; parsed points and texts."""
    points, texts = [], []
    for start in tqdm(range(0, len(questions), batch), desc='generate', leave=False):
        chunk = questions[start:start + batch]
        prompts = [processor.apply_chat_template([user_turn(q, question_first=question_first)],
                                                 add_generation_prompt=True)
                   for _, q, _, _ in chunk]
        inputs = processor(text=prompts, images=[images[i] for i, _, _, _ in chunk],
                           return_tensors='pt', padding=True)
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
        new = out[:, inputs['input_ids'].shape[1]:]
        for t in processor.batch_decode(new, skip_special_tokens=True):
            texts.append(t)
            points.append(read_point(t))
    return points, texts


@torch.no_grad()
def answer_loss(model, builder, pixels_fn, questions, batch=16, style='points'):
    """Mean teacher-forced loss over answer tokens, with the image each question gets."""
    total, count = 0.0, 0
    for start in range(0, len(questions), batch):
        chunk = questions[start:start + batch]
        seqs = [builder.build([(q, locate.answer_text(p, q, style))])
                for _, q, p, _ in chunk]
        ids, labels, mask = builder.collate(seqs)
        out = model(input_ids=ids, attention_mask=mask,
                    pixel_values=pixels_fn([i for i, _, _, _ in chunk]), labels=labels)
        n = int((labels[:, 1:] != -100).sum())
        total += float(out.loss) * n
        count += n
    return total / count


@torch.no_grad()
def attention_mass(model, builder, eval_set, questions, patch, batch=16, style='points'):
    """
    Mean attention mass on the asked object's patches, per decoder layer and head.

    Averaged over the positions that predict the reply tokens; uniform attention over the
    sequence would give roughly (object patches / sequence length), ~1 %.
    """
    model.set_attn_implementation('eager')
    sums, count = None, 0
    for start in range(0, len(questions), batch):
        chunk = questions[start:start + batch]
        seqs, spans = [], []
        for _, q, p, _ in chunk:
            span = []
            seqs.append(builder.build([(q, locate.answer_text(p, q, style))], span))
            spans.append(span[0])
        ids, labels, mask = builder.collate(seqs)
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True,
                    pixel_values=gdata.pixel_values(eval_set.rgb[[i for i, _, _, _ in chunk]]))
        att = torch.stack(out.attentions, 1)  # (B, L, H, T, T)
        for row, ((img, _, _, label), (s0, s1)) in enumerate(zip(chunk, spans)):
            frac = locate.patch_fractions(eval_set.labels[img], label, patch)
            on = (ids[row] == builder.image_id).nonzero().squeeze(1)[torch.from_numpy(frac > 0)]
            mass = att[row, :, :, s0 - 1:s1 - 1][..., on].sum(-1).mean(-1)  # (L, H)
            sums = mass if sums is None else sums + mass
            count += 1
    model.set_attn_implementation('sdpa')
    return (sums / count).tolist()


def evaluate_dir(model_dir, eval_set, train_set=None, threads=1, seed=0, question_first=False,
                 style='points') -> dict:
    """All metrics of the checkpoint in ``model_dir`` (trained on ``style`` answers)."""
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    questions = eval_questions(eval_set)
    result = {'model_class': type(model).__name__, 'eval_images': len(eval_set)}
    # Pipeline checks: image tokens = patches, pixels vary, projected tokens not collapsed.
    sample = processor(text=[processor.apply_chat_template([user_turn('x')],
                                                           add_generation_prompt=True)],
                       images=[eval_set.rgb[0]], return_tensors='pt')
    grid = model.config.vision_config.image_size // model.config.vision_config.patch_size
    result['image_tokens'] = int((sample['input_ids'] == model.config.image_token_id).sum())
    result['patches'] = grid * grid
    result['pixel_std'] = float(sample['pixel_values'].std())
    result.update(projector_stats(model, gdata.pixel_values(eval_set.rgb[:16])))
    points, texts = generate_points(model, processor, eval_set.rgb, questions,
                                    question_first=question_first)
    result['model'] = score(points, questions, eval_set.labels)
    result['examples'] = [{'q': q, 'target': [round(v, 3) for v in p], 'answer': t}
                          for (_, q, p, _), t in list(zip(questions, texts))[:6]]
    if eval_set.blank_rgb is not None:
        blank_points, _ = generate_points(model, processor, eval_set.blank_rgb, questions,
                                          question_first=question_first)
        result['model_blank_image'] = score(blank_points, questions, eval_set.labels)
    if train_set is not None:
        prior = np.mean([p for i in range(len(train_set)) for _, p, _ in locate.targets(
            train_set.labels[i], train_set.category[i], train_set.colour[i])], axis=0)
        result['prior_mean_point'] = score([tuple(prior)] * len(questions), questions,
                                           eval_set.labels)
    # Random points on the table (table or object pixels), 20 draws per question.
    draws = []
    for _ in range(20):
        pts = []
        for i, _, _, _ in questions:
            v, u = np.nonzero(eval_set.labels[i] != 0)
            sel = [l_ for l_ in range(len(u)) if eval_set.labels[i][v[l_], u[l_]] != 2]
            k = rng.choice(sel)
            size = eval_set.labels.shape[1]
            pts.append(((u[k] + 0.5) / size, (v[k] + 0.5) / size))
        draws.append(score(pts, questions, eval_set.labels))
    result['random_table_point'] = {k: float(np.mean([d[k] for d in draws]))
                                    for k in draws[0]}
    builder = locate.SequenceBuilder(processor.tokenizer, grid * grid, question_first)
    result['loss_real'] = answer_loss(model, builder,
                                      lambda idx: gdata.pixel_values(eval_set.rgb[idx]),
                                      questions, style=style)
    shift = np.roll(np.arange(len(eval_set)), 1)
    result['loss_shuffled'] = answer_loss(
        model, builder, lambda idx: gdata.pixel_values(eval_set.rgb[shift[idx]]), questions,
        style=style)
    if eval_set.blank_rgb is not None:
        result['loss_blank'] = answer_loss(
            model, builder, lambda idx: gdata.pixel_values(eval_set.blank_rgb[idx]), questions,
            style=style)
    return result


def main(argv=None) -> None:
    """Command line: python -m experiments.grounding.evaluate --model D --eval E.npz."""
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument('--model', required=True)
    p.add_argument('--eval', required=True)
    p.add_argument('--train', help='training .npz, for the mean-point prior baseline')
    p.add_argument('--image-size', type=int, default=224)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', help='write the metrics JSON here')
    p.add_argument('--answer-style', choices=('points', 'trace'), default='points',
                   help='the answer format the model was trained on')
    p.add_argument('--question-first', action='store_true', help='as the model was trained')
    p.add_argument('--attention-only', type=int, default=0,
                   help='only measure attention mass on the asked object for N questions')
    args = p.parse_args(argv)
    eval_set = gdata.load_set(args.eval, args.image_size)
    if args.attention_only:
        torch.set_num_threads(args.threads)
        model = AutoModelForImageTextToText.from_pretrained(args.model).eval()
        processor = AutoProcessor.from_pretrained(args.model)
        vision = model.config.vision_config
        grid = vision.image_size // vision.patch_size
        builder = locate.SequenceBuilder(processor.tokenizer, grid * grid, args.question_first)
        questions = eval_questions(eval_set)[:args.attention_only]
        mass = attention_mass(model, builder, eval_set, questions, vision.patch_size,
                              style=args.answer_style)
        rounded = [[round(v, 4) for v in layer] for layer in mass]
        print(json.dumps({'attention_mass_layer_head': rounded}))
        return
    train_set = gdata.load_set(args.train, args.image_size) if args.train else None
    result = evaluate_dir(args.model, eval_set, train_set, args.threads,
                          question_first=args.question_first, style=args.answer_style)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + '\n')


if __name__ == '__main__':
    main()
