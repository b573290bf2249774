"""
Stage 1: dense pretraining of the tiny LLaVA's CLIP vision tower on sim renders.

Linear heads on the features LLaVA feeds its projector (last encoder layer, CLS dropped)
predict, per patch, the pixel fractions of each segmentation class and object colour, the
patch's own row and column (so absolute position survives to the last layer) and the offset to
the centroid of the object covering it. Then linear probes fitted on frozen features measure
what the features carry, against a randomly initialized tower of the same shape.
"""

import dataclasses
import json
import math
import pathlib
import time

from experiments.grounding import data as gdata
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from tqdm import tqdm
from trace_train.train.recipe import parse_recipe
from transformers import (AutoModelForImageTextToText, AutoProcessor, CLIPVisionConfig,
                          CLIPVisionModel)


@dataclasses.dataclass
class DenseConfig:
    """The options of a dense pretraining run (a recipe's keys)."""

    train: str = dataclasses.field(metadata={'help': 'training .npz (render.py)'})
    eval_set: str = dataclasses.field(metadata={'help': 'held-out .npz for the probes',
                                                'aliases': ['--eval']})
    out: str = dataclasses.field(metadata={'help': 'output directory'})
    image_size: int = 224
    patch_size: int = 16
    hidden: int = 128
    layers: int = 4
    steps: int = 1500
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 100
    eval_images: int = 80
    probe_images: int = 300
    threads: int = 1
    seed: int = 0
    init: str = dataclasses.field(default='', metadata={
        'help': 'a trace-tiny checkpoint: train its tower, and save the whole model with the '
                'trained tower as OUT/model (its other weights unchanged)'})


def vision_config(image_size: int = 224, patch_size: int = 16, hidden: int = 128,
                  layers: int = 4, heads: int = 4, intermediate: int = 512,
                  projection_dim: int = 192) -> CLIPVisionConfig:
    """CLIP vision config of the tiny VLM (same fields tiny_vlm.build_model sets)."""
    return CLIPVisionConfig(
        image_size=image_size, patch_size=patch_size, hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate,
        projection_dim=projection_dim)


def patch_features(tower: CLIPVisionModel, pixels: torch.Tensor) -> torch.Tensor:
    """Features LLaVA selects: hidden_states[-1] without the CLS token, (B, P, D)."""
    out = tower(pixel_values=pixels, output_hidden_states=True)
    return out.hidden_states[-1][:, 1:]


class DenseHeads(nn.Module):
    """LayerNorm + linear heads per patch: class, colour, row, column, object offset."""

    def __init__(self, hidden: int, grid: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.cls = nn.Linear(hidden, gdata.NUM_CLASSES)
        self.col = nn.Linear(hidden, gdata.NUM_COLOURS)
        self.row = nn.Linear(hidden, grid)
        self.column = nn.Linear(hidden, grid)
        self.offset = nn.Linear(hidden, 2)

    def forward(self, feats: torch.Tensor) -> dict:
        """Return logits/regressions of every head."""
        h = self.norm(feats)
        return {k: getattr(self, k)(h) for k in ('cls', 'col', 'row', 'column', 'offset')}


def dense_loss(pred: dict, tgt: dict) -> tuple:
    """Sum of the head losses; also returns each term and patch accuracies."""
    def soft_ce(logits, target):
        return -(target * F.log_softmax(logits, -1)).sum(-1).mean()

    terms = {
        'cls': soft_ce(pred['cls'], tgt['cls']),
        'col': soft_ce(pred['col'], tgt['col']),
        'row': F.cross_entropy(pred['row'].flatten(0, 1), tgt['row'].flatten()),
        'column': F.cross_entropy(pred['column'].flatten(0, 1), tgt['column'].flatten()),
    }
    mask = tgt['has_object']
    terms['offset'] = (F.smooth_l1_loss(pred['offset'][mask], tgt['offset'][mask])
                       if mask.any() else pred['offset'].sum() * 0)
    # Objects are a small part of the image: weight colour and offset up.
    total = terms['cls'] + 2 * terms['col'] + 0.5 * (terms['row'] + terms['column']) \
        + 2 * terms['offset']
    return total, {k: float(v.detach()) for k, v in terms.items()}


def iterate_batches(dataset: gdata.GroundingSet, batch: int, rng: np.random.Generator,
                    patch: int, augment: bool = True):
    """Yield endless shuffled (pixels, targets) batches, mirrored at random."""
    while True:
        order = rng.permutation(len(dataset))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start:start + batch]
            rgb, labels = dataset.rgb[idx], dataset.labels[idx]
            if augment:
                flips = rng.random(len(idx)) < 0.5
                rgb, labels = rgb.copy(), labels.copy()
                rgb[flips] = rgb[flips][:, :, ::-1]
                labels[flips] = labels[flips][:, :, ::-1]
            yield (gdata.pixel_values(rgb),
                   gdata.batch_targets(labels, dataset.category[idx], dataset.colour[idx],
                                       patch))


def probe_targets(labels, category, colour, patch):
    """Per-patch probe labels: majority class, object colour (-1 if < 30% object), row, col."""
    t = gdata.batch_targets(labels, category, colour, patch)
    obj = 1.0 - t['col'][..., -1]
    colour_idx = t['col'][..., :-1].argmax(-1)
    return {'class': t['cls'].argmax(-1), 'colour': torch.where(obj >= 0.3, colour_idx, -1),
            'row': t['row'], 'column': t['column']}


@torch.no_grad()
def extract(tower, dataset, patch, batch=32):
    """Frozen features (N*P, D) and probe labels of a whole set."""
    feats, labels = [], {k: [] for k in ('class', 'colour', 'row', 'column')}
    for start in range(0, len(dataset), batch):
        sl = slice(start, start + batch)
        feats.append(patch_features(tower, gdata.pixel_values(dataset.rgb[sl])).flatten(0, 1))
        for k, v in probe_targets(dataset.labels[sl], dataset.category[sl],
                                  dataset.colour[sl], patch).items():
            labels[k].append(v.flatten())
    return torch.cat(feats), {k: torch.cat(v) for k, v in labels.items()}


def linear_probe(x_train, y_train, x_eval, y_eval, steps=300, lr=0.05):
    """Fit a linear classifier (standardized features, full-batch Adam); eval accuracy."""
    keep, keep_e = y_train >= 0, y_eval >= 0
    x_train, y_train, x_eval, y_eval = x_train[keep], y_train[keep], x_eval[keep_e], \
        y_eval[keep_e]
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_eval = (x_train - mu) / sd, (x_eval - mu) / sd
    n_cls = int(max(y_train.max(), y_eval.max())) + 1
    head = nn.Linear(x_train.shape[1], n_cls)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(x_train), y_train).backward()
        opt.step()
    with torch.no_grad():
        return float((head(x_eval).argmax(-1) == y_eval).float().mean())


def collapse_stats(feats: torch.Tensor) -> dict:
    """Mean-vector magnitude vs per-token spread: is there a dominant constant component."""
    mean = feats.mean(0)
    return {'mean_norm': float(mean.norm()),
            'token_spread': float((feats - mean).norm(dim=-1).mean()),
            'feature_std_mean': float(feats.std(0).mean())}


def run_probes(tower, train_set, eval_set, patch, max_train_patches=40000):
    """Linear-probe accuracies (class, colour of object patches, row, column) of a tower."""
    x_tr, y_tr = extract(tower, train_set, patch)
    x_ev, y_ev = extract(tower, eval_set, patch)
    if len(x_tr) > max_train_patches:
        sel = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(0))[
            :max_train_patches]
        x_tr, y_tr = x_tr[sel], {k: v[sel] for k, v in y_tr.items()}
    out = {k: linear_probe(x_tr, y_tr[k], x_ev, y_ev[k]) for k in y_tr}
    out['majority_baseline'] = {
        k: float((y_ev[k][y_ev[k] >= 0] == torch.mode(y_tr[k][y_tr[k] >= 0]).values)
                 .float().mean()) for k in y_tr}
    out['collapse'] = collapse_stats(x_ev)
    return out


def train(args: DenseConfig) -> dict:
    """Train the tower + heads; save the tower (CLIPVisionModel) and the metrics."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vlm = None
    if args.init:  # the checkpoint's tower fixes the shape
        vlm = AutoModelForImageTextToText.from_pretrained(args.init, dtype=torch.float32)
        tower, cfg = vlm.model.vision_tower, vlm.model.vision_tower.config
        args = dataclasses.replace(args, image_size=cfg.image_size, patch_size=cfg.patch_size,
                                   hidden=cfg.hidden_size, layers=cfg.num_hidden_layers)
    else:
        cfg = vision_config(args.image_size, args.patch_size, args.hidden, args.layers)
        tower = CLIPVisionModel(cfg)
    train_set = gdata.load_set(args.train, args.image_size)
    eval_set = gdata.load_set(args.eval_set, args.image_size, limit=args.eval_images)
    probe_train = gdata.GroundingSet(train_set.rgb[:args.probe_images],
                                     train_set.labels[:args.probe_images],
                                     train_set.category[:args.probe_images],
                                     train_set.colour[:args.probe_images])
    metrics = {}
    if vlm is not None:
        print('probing the initial tower ...')
        metrics['probe_init'] = run_probes(tower.eval(), probe_train, eval_set, args.patch_size)
    grid = args.image_size // args.patch_size
    heads = DenseHeads(args.hidden, grid)
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)

    def lr_at(step):
        warm = min(1.0, (step + 1) / args.warmup)
        return warm * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    batches = iterate_batches(train_set, args.batch, rng, args.patch_size)
    start = time.time()
    with open(out / 'train_log.jsonl', 'w') as log:
        tower.train()
        for step in tqdm(range(args.steps), desc='dense', unit='step'):
            pixels, tgt = next(batches)
            loss, terms = dense_loss(heads(patch_features(tower, pixels)), tgt)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if step % 20 == 0 or step == args.steps - 1:
                rec = {'step': step, 'loss': float(loss), **terms,
                       'elapsed_s': time.time() - start}
                log.write(json.dumps(rec) + '\n')
                log.flush()
    elapsed = time.time() - start
    tower.save_pretrained(out / 'vision_tower')
    if vlm is not None:
        save_with_tower(vlm, args.init, out / 'model')
    torch.save(heads.state_dict(), out / 'dense_heads.pt')
    metrics.update({'train_images': len(train_set), 'steps': args.steps, 'batch': args.batch,
                    'train_time_s': elapsed,
                    'images_per_s': args.steps * args.batch / elapsed})
    tower.eval()
    print('probing the trained tower ...')
    metrics['probe_trained'] = run_probes(tower, probe_train, eval_set, args.patch_size)
    print('probing a random tower ...')
    torch.manual_seed(args.seed)
    metrics['probe_random'] = run_probes(CLIPVisionModel(cfg).eval(), probe_train, eval_set,
                                         args.patch_size)
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
    print(json.dumps(metrics, indent=2))
    return metrics


def save_with_tower(vlm, init: str, out: pathlib.Path) -> None:
    """Save ``vlm`` (its tower trained in place) in bf16 with ``init``'s processor files."""
    vlm.to(torch.bfloat16).save_pretrained(out)
    AutoProcessor.from_pretrained(init).save_pretrained(out)
    vlm.float()


def main(argv=None) -> dict:
    """Command line: ``--config RECIPE.yaml`` and/or the options of ``DenseConfig``."""
    return train(parse_recipe(DenseConfig, argv, __doc__.strip().splitlines()[0]))


if __name__ == '__main__':
    main()
