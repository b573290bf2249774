"""
Stage 2: train the tiny LLaVA's projector and decoder to answer "Where is the X?" with a point.

The vision tower comes from stage 1 (dense.py), frozen or at a low learning rate. The
projector's first layer is initialized to whiten the tower's features (subtract their mean,
divide by their spread, measured on training images): a large constant component in the
features otherwise drowns the per-patch differences the decoder must read. The optional
attention supervision is ``trace_train.train.losses.attention_loss``, the fine-tuning's own,
towards the asked object's patches. Run it as
``python -m experiments.grounding.localize --config recipes/trace_tiny/2b_localize.yaml``.
"""

import dataclasses
import json
import math
import pathlib
import time
from typing import Literal

from experiments.grounding import data as gdata
from experiments.grounding import evaluate
from experiments.grounding.dense import patch_features
from experiments.grounding.locate import (corpus_texts, sample_batch, SequenceBuilder,
                                          stage_texts, tokenizer_texts)
import numpy as np
import torch
from tqdm import tqdm
from trace_train.model import tiny_vlm
from trace_train.train.losses import attention_loss
from trace_train.train.recipe import parse_recipe
from transformers import AutoModelForImageTextToText, AutoProcessor, CLIPVisionModel


def option(default, doc: str):
    """Return a dataclass field with a default and a help text."""
    return dataclasses.field(default=default, metadata={'help': doc})


@dataclasses.dataclass
class LocalizeConfig:
    """The options of a localization run (a recipe's keys)."""

    train: str = dataclasses.field(metadata={'help': 'training .npz (render.py)'})
    out: str = dataclasses.field(metadata={'help': 'output checkpoint directory'})
    eval_set: str | None = dataclasses.field(default=None, metadata={
        'help': 'eval .npz (rendered with --blank) for metrics', 'aliases': ['--eval']})
    vision: str | None = option(None, 'stage-1 vision_tower directory (else random init)')
    init: str | None = option(None, 'continue training this stage-2 checkpoint directory')
    vocab_corpus: list[str] = dataclasses.field(default_factory=list, metadata={
        'help': 'with init: LLaVA json files whose text extends the vocabulary to vocab_size'})
    whiten: bool = option(True, 'whiten the projector at initialization')
    image_size: int = option(224, 'model input side')
    patch_size: int = option(16, 'vision patch side')
    vocab_size: int = option(384, 'tokenizer size')
    text_layers: int = option(4, 'decoder layers')
    text_hidden: int = option(192, 'decoder width')
    steps: int = option(600, 'optimizer steps')
    schedule_steps: int = option(0, 'length of the cosine schedule (0: steps)')
    batch: int = option(16, 'images per step')
    max_turns: int = option(4, 'questions per image')
    lr: float = option(1e-3, 'learning rate of the projector and decoder')
    vision_lr: float = option(0.0, 'learning rate of the tower (0: frozen)')
    warmup: int = option(50, 'warm-up steps')
    question_first: bool = option(False, 'question before the image (then use max_turns 1)')
    answer_style: Literal['points', 'trace'] = option(
        'points', "'points': [(x, y)]; 'trace': the dataset's 'The X is at (x, y).'")
    attn_sup: float = option(0.0, 'weight of the attention supervision (0: off)')
    attn_sup_heads: int = option(1, 'supervised heads (the first N) in every layer but the first')
    threads: int = option(1, 'torch CPU threads')
    seed: int = option(0, 'seed')


@torch.no_grad()
def whiten_projector(model, pixels: torch.Tensor, scale: float = 1.0) -> dict:
    """Fold feature standardization into the projector's first linear layer; return stats."""
    feats = patch_features(model.model.vision_tower, pixels).flatten(0, 1)
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    lin = model.model.multi_modal_projector.linear_1
    lin.weight.mul_(scale / sd)
    lin.bias.sub_(lin.weight @ mu)
    return {'feature_mean_norm': float(mu.norm()),
            'feature_token_spread': float((feats - mu).norm(dim=-1).mean())}


def attention_targets(ids: torch.Tensor, image_id: int, answers: list) -> tuple:
    """
    Rows (sample, position, target mask) for ``attention_loss``, one per predicting position.

    ``answers`` holds (row, reply start, reply end, per-patch object fraction); a reply's
    positions are pushed towards the image tokens of the patches the object covers.
    """
    rows = []
    for b, start, end, frac in answers:
        on = (ids[b] == image_id).nonzero().squeeze(1)[torch.from_numpy(frac > 0)]
        if len(on):
            mask = torch.zeros(ids.shape[1], dtype=torch.bool)
            mask[on] = True
            rows += [(b, position, mask) for position in range(start - 1, end - 1)]
    if not rows:
        return None
    return (torch.tensor([r[0] for r in rows]), torch.tensor([r[1] for r in rows]),
            torch.stack([r[2] for r in rows]))


def build(args: LocalizeConfig, train_set):
    """Tokenizer, processor and model with the stage-1 tower and a whitened projector."""
    cfg = tiny_vlm.TinyVlmConfig(image_size=args.image_size, patch_size=args.patch_size,
                                 vocab_size=args.vocab_size, text_layers=args.text_layers,
                                 text_hidden_size=args.text_hidden)
    if args.init:  # continue from a stage-2 checkpoint (tokenizer included)
        processor = AutoProcessor.from_pretrained(args.init)
        model = AutoModelForImageTextToText.from_pretrained(args.init)
        if args.vocab_corpus:
            processor.tokenizer = tiny_vlm.extend_tokenizer(
                processor.tokenizer, corpus_texts(args.vocab_corpus), args.vocab_size,
                keep=stage_texts(processor.tokenizer))
            model.resize_token_embeddings(len(processor.tokenizer))
        return cfg, processor.tokenizer, processor, model, {'init': args.init}
    tokenizer = tiny_vlm.train_tokenizer(tokenizer_texts(), cfg.vocab_size)
    processor = tiny_vlm.build_processor(tokenizer, cfg)
    model = tiny_vlm.build_model(tokenizer, cfg)
    stats = {}
    if args.vision:
        tower = CLIPVisionModel.from_pretrained(args.vision)
        model.model.vision_tower.load_state_dict(tower.state_dict())
    if args.whiten:
        stats = whiten_projector(model, gdata.pixel_values(train_set.rgb[:64]))
    return cfg, tokenizer, processor, model, stats


def optimizer(model, args: LocalizeConfig):
    """Return AdamW on the projector and decoder (tower: ``vision_lr``) and its schedule."""
    tower_params = list(model.model.vision_tower.parameters())
    other = [p for n, p in model.named_parameters() if not n.startswith('model.vision_tower')]
    groups = [{'params': other, 'lr': args.lr}]
    if args.vision_lr > 0:
        groups.append({'params': tower_params, 'lr': args.vision_lr})
    else:
        for p in tower_params:
            p.requires_grad_(False)
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    length = args.schedule_steps or args.steps
    return opt, torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / args.warmup) * (
            0.55 + 0.45 * math.cos(math.pi * min(1.0, s / length))))


def train(args: LocalizeConfig) -> dict:
    """Train, evaluate (evaluate.py) and save a stock-loadable checkpoint."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_set = gdata.load_set(args.train, args.image_size)
    cfg, tokenizer, processor, model, stats = build(args, train_set)
    builder = SequenceBuilder(tokenizer, cfg.num_image_tokens, args.question_first)
    opt, sched = optimizer(model, args)
    sup = args.attn_sup > 0
    if sup:  # attention weights are only returned by the eager implementation
        model.set_attn_implementation('eager')
    model.train()
    start, seen, answers = time.time(), 0, 0
    order = rng.permutation(len(train_set))
    with open(out / 'train_log.jsonl', 'w') as log:
        for step in tqdm(range(args.steps), desc='localize', unit='step'):
            lo = (step * args.batch) % (len(order) - args.batch)
            if lo < args.batch:
                order = rng.permutation(len(train_set))
            batch = sample_batch(train_set, order[lo:lo + args.batch], rng, builder,
                                 args.max_turns, patch=args.patch_size if sup else None,
                                 answer_style=args.answer_style)
            pixels, ids, labels, mask = batch[:4]
            fwd = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, labels=labels,
                        output_attentions=sup)
            loss = lm_loss = fwd.loss
            targets = attention_targets(ids, builder.image_id, batch[4]) if sup else None
            att_loss = None
            if targets is not None:
                att_loss = attention_loss(fwd.attentions, *targets, heads=args.attn_sup_heads)
                loss = lm_loss + args.attn_sup * att_loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            seen += len(ids)
            answers += int((labels == tokenizer.eos_token_id).sum())
            if step % 20 == 0 or step == args.steps - 1:
                rec = {'step': step, 'loss': float(lm_loss), 'images': seen,
                       'answers': answers, 'elapsed_s': time.time() - start}
                if att_loss is not None:
                    rec['attn_loss'] = float(att_loss)
                log.write(json.dumps(rec) + '\n')
                log.flush()
    elapsed = time.time() - start
    model.eval()
    if sup:
        model.set_attn_implementation('sdpa')
    model.save_pretrained(out)
    processor.save_pretrained(out)
    metrics = {'args': dataclasses.asdict(args), 'init_stats': stats, 'train_time_s': elapsed,
               'steps': args.steps, 'images_per_s': seen / elapsed,
               'answers_per_s': answers / elapsed, 'train_images': len(train_set),
               'answers_seen': answers}
    if args.eval_set:
        eval_set = gdata.load_set(args.eval_set, args.image_size)
        metrics['eval'] = evaluate.evaluate_dir(out, eval_set, train_set, args.threads,
                                                question_first=args.question_first,
                                                style=args.answer_style)
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
    print(json.dumps({k: v for k, v in metrics.items() if k != 'args'}, indent=2))
    return metrics


def main(argv=None) -> dict:
    """Command line: ``--config RECIPE.yaml`` and/or the options of ``LocalizeConfig``."""
    return train(parse_recipe(LocalizeConfig, argv, __doc__.strip().splitlines()[0]))


if __name__ == '__main__':
    main()
