"""
Stage 2: train the tiny LLaVA's projector and decoder to answer "Where is the X?" with a point.

The vision tower comes from stage 1 (dense.py), frozen or at a low learning rate. The
projector's first layer is initialized to whiten the tower's features (subtract their mean,
divide by their spread, measured on training images): a large constant component in the
features otherwise drowns the per-patch differences the decoder must read. Each training
sequence holds one image and several question/answer turns (one per visible object), so the
image tokens are paid once for several targets. The answer is the visible-pixel centroid of
the object in normalized image coordinates, formatted as TRACE answers are: ``[(0.42, 0.55)]``.
"""

import argparse
import dataclasses
import json
import math
import pathlib
import time

import numpy as np
import torch
from tqdm import tqdm
from trace_ros.core.answer_format import (assistant_turn, format_locate_answer, format_points,
                                          user_turn)
from trace_ros.sim.objects import CATEGORIES
from trace_train import tiny_vlm
from trace_train.grounding import data as gdata
from trace_train.grounding.dense import patch_features
from transformers import AutoModelForImageTextToText, AutoProcessor, CLIPVisionModel

MIN_PIXELS = 30  # objects with fewer visible pixels (at the model's size) are not asked about


def question(colour: int, category: int) -> str:
    """Return the localization question for an object."""
    return f'Where is the {gdata.COLOUR_NAMES[colour]} {CATEGORIES[category]}?'


def answer(point, question_text: str | None = None) -> str:
    """
    Return the answer text for a normalized point.

    A point list (``[(0.42, 0.55)]``), or with the question, TRACE's localization sentence
    (``The red mug is at (0.420, 0.550).``, as the dataset pipeline writes it), so that the
    TRACE fine-tuning stage starts from the readout it needs.
    """
    if question_text is None:
        return format_points([point], 2)
    label = question_text.removeprefix('Where is the ').removesuffix('?')
    return format_locate_answer(label, point)


def answer_text(point, question_text: str, style: str) -> str:
    """Return the answer in ``style``: 'points' (a point list) or 'trace' (a sentence)."""
    return answer(point, question_text if style == 'trace' else None)


def targets(labels, category, colour, min_pixels=MIN_PIXELS):
    """(question, (x, y) normalized centroid, object label) of every visible object."""
    size = labels.shape[0]
    out = []
    for label, (u, v, n) in gdata.object_centroids(labels).items():
        i = label - gdata.FIRST_OBJECT
        if n >= min_pixels and category[i] >= 0:
            out.append((question(colour[i], category[i]),
                        ((u + 0.5) / labels.shape[1], (v + 0.5) / size), label))
    return out


def tokenizer_texts():
    """Texts that cover the vocabulary: every question and many answers."""
    texts = [question(c, k) for c in range(len(gdata.COLOUR_NAMES) - 1)
             for k in range(len(CATEGORIES))]
    rng = np.random.default_rng(0)
    texts += [answer(p) for p in rng.random((500, 2))]
    return texts * 4


def stage_texts(tokenizer):
    """Return this stage's texts as the model sees them (chat template included)."""
    return [tokenizer.apply_chat_template(
        [{'role': 'user', 'content': question(0, 0)}, {'role': 'assistant', 'content': text}],
        tokenize=False) for text in tokenizer_texts()[:2000]]


def corpus_texts(paths):
    """Every message of LLaVA-format conversation files (the TRACE data's llava_*.json)."""
    return [turn['value'].replace(tiny_vlm.IMAGE_TOKEN, '') for path in paths
            for record in json.loads(pathlib.Path(path).read_text())
            for turn in record['conversations']]


class SequenceBuilder:
    """
    Token ids and loss labels of image + multi-turn Q/A sequences, as the processor makes them.

    Each turn is rendered by the tiny VLM's chat template (``tiny_vlm.CHAT_TEMPLATE``) and its
    ``<image>`` placeholder expanded to one token per patch.
    """

    def __init__(self, tokenizer, num_image_tokens: int, question_first: bool = False):
        self.tok = tokenizer
        self.image_id = tokenizer.convert_tokens_to_ids(tiny_vlm.IMAGE_TOKEN)
        self.num_image_tokens = num_image_tokens
        self.question_first = question_first

    def _ids(self, text):
        return self.tok(text, add_special_tokens=False)['input_ids']

    def _render(self, messages, **kwargs) -> str:
        return self.tok.apply_chat_template(messages, chat_template=tiny_vlm.CHAT_TEMPLATE,
                                            tokenize=False, **kwargs)

    def turn_texts(self, question: str, answer: str, with_image: bool):
        """(user, reply, tail) texts of one turn: the reply ends with its end-of-turn token."""
        user = user_turn(question, question_first=self.question_first, with_image=with_image)
        head = self._render([user], add_generation_prompt=True)
        full = self._render([user, assistant_turn(answer)])
        reply = full[len(head):].rstrip()
        if not full.startswith(head) or not reply.startswith(answer):
            raise ValueError('the chat template does not render the reply after the question')
        return head, reply, full[len(head) + len(reply):]

    def build(self, qa, spans=None):
        """
        Token ids and labels of qa: [(question, answer), ...], the image before the first question.

        With a list ``spans``, appends each reply's (start, end) token positions to it.
        """
        ids, labels = [], []
        for turn, (q, a) in enumerate(qa):
            head, reply, tail = self.turn_texts(q, a, with_image=turn == 0)
            user = []
            for token in self._ids(head):
                user += [token] * self.num_image_tokens if token == self.image_id else [token]
            reply, tail = self._ids(reply), self._ids(tail)
            if spans is not None:
                spans.append((len(ids) + len(user), len(ids) + len(user) + len(reply)))
            ids += user + reply + tail
            labels += [-100] * len(user) + reply + [-100] * len(tail)
        return ids, labels

    def collate(self, seqs):
        """Right-pad a list of (ids, labels) to tensors with an attention mask."""
        width = max(len(i) for i, _ in seqs)
        pad = self.tok.pad_token_id
        ids = torch.full((len(seqs), width), pad)
        labels = torch.full((len(seqs), width), -100)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, (i, lab) in enumerate(seqs):
            ids[row, :len(i)] = torch.tensor(i)
            labels[row, :len(i)] = torch.tensor(lab)
            mask[row, :len(i)] = 1
        return ids, labels, mask


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


@torch.no_grad()
def projector_stats(model, pixels: torch.Tensor) -> dict:
    """Mean magnitude vs per-token spread of the projected image tokens."""
    feats = model.model.get_image_features(pixel_values=pixels).pooler_output
    feats = torch.stack(list(feats)).flatten(0, 1)
    mean = feats.mean(0)
    return {'proj_mean_norm': float(mean.norm()),
            'proj_token_spread': float((feats - mean).norm(dim=-1).mean())}


def patch_fractions(labels: np.ndarray, label: int, patch: int) -> np.ndarray:
    """Fraction of each patch's pixels (row-major grid) that show object ``label``."""
    grid = labels.shape[0] // patch
    hit = labels[:grid * patch, :grid * patch] == label
    return hit.reshape(grid, patch, grid, patch).mean((1, 3)).reshape(-1)


def sample_batch(dataset, idx, rng, builder, max_turns, augment=True, patch=None,
                 answer_style='points'):
    """
    Pixels and padded token tensors for images ``idx`` (random mirror, random objects).

    With ``patch``, also returns for attention supervision a list of (row, reply start, reply
    end, per-patch fraction of the asked object) per answer.
    """
    rgb, labels = dataset.rgb[idx].copy(), dataset.labels[idx].copy()
    seqs, answers = [], []
    for b, i in enumerate(idx):
        if augment and rng.random() < 0.5:
            rgb[b], labels[b] = rgb[b][:, ::-1], labels[b][:, ::-1]
        qa = targets(labels[b], dataset.category[i], dataset.colour[i])
        rng.shuffle(qa)
        spans = []
        seqs.append(builder.build([(q, answer_text(p, q, answer_style))
                                   for q, p, _ in qa[:max_turns]], spans))
        if patch:
            for (start, end), (_, _, label) in zip(spans, qa[:max_turns]):
                answers.append((b, start, end, patch_fractions(labels[b], label, patch)))
    batch = (gdata.pixel_values(rgb), *builder.collate(seqs))
    return batch + (answers,) if patch else batch


def attention_loss(attentions, ids, image_id, answers, layers, heads):
    """
    Attention-supervision loss (training time only; the saved model stays stock).

    Mean -log(attention mass on the asked object's patches) of the positions that predict
    each reply token, for the given decoder layers and heads.
    """
    terms = []
    for b, start, end, frac in answers:
        image_pos = (ids[b] == image_id).nonzero().squeeze(1)
        on = image_pos[torch.from_numpy(frac > 0)]
        if not len(on):
            continue
        for layer in layers:
            att = attentions[layer][b, heads, start - 1:end - 1]  # (H, T, S)
            mass = att[..., on].sum(-1)
            terms.append(-torch.log(mass + 1e-4).mean())
    return torch.stack(terms).mean() if terms else None


def build(args, train_set):
    """Tokenizer, processor and model with the stage-1 tower and a whitened projector."""
    cfg = tiny_vlm.TinyVlmConfig(image_size=args.image_size, patch_size=args.patch_size,
                                 vocab_size=args.vocab_size, text_layers=args.text_layers,
                                 text_hidden_size=args.text_hidden)
    if getattr(args, 'init', None):  # continue from a stage-2 checkpoint (tokenizer included)
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


def train(args) -> dict:
    """Train, evaluate (evaluate.py) and save a stock-loadable checkpoint."""
    from trace_train.grounding import evaluate
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_set = gdata.load_set(args.train, args.image_size)
    cfg, tokenizer, processor, model, stats = build(args, train_set)
    builder = SequenceBuilder(tokenizer, cfg.num_image_tokens, args.question_first)
    tower_params = list(model.model.vision_tower.parameters())
    other = [p for n, p in model.named_parameters() if not n.startswith('model.vision_tower')]
    groups = [{'params': other, 'lr': args.lr}]
    if args.vision_lr > 0:
        groups.append({'params': tower_params, 'lr': args.vision_lr})
    else:
        for p in tower_params:
            p.requires_grad_(False)
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup) * (
        0.55 + 0.45 * math.cos(math.pi * min(1.0, s / args.steps))))
    sup = args.attn_sup > 0
    sup_layers = list(range(1, cfg.text_layers))
    sup_heads = list(range(args.attn_sup_heads))
    if sup:  # attention weights are only returned by the eager implementation
        model.set_attn_implementation('eager')
    model.train()
    log = open(out / 'train_log.jsonl', 'w')
    start, seen, answers = time.time(), 0, 0
    order = rng.permutation(len(train_set))
    bar = tqdm(range(args.steps), desc='localize', unit='step')
    for step in bar:
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
        att_loss = None
        if sup:
            att_loss = attention_loss(fwd.attentions, ids, builder.image_id, batch[4],
                                      sup_layers, sup_heads)
            if att_loss is not None:
                loss = lm_loss + args.attn_sup * att_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        seen += len(ids)
        answers += int((labels == tokenizer.eos_token_id).sum())
        if step % 20 == 0 or step == args.steps - 1:
            rec = {'step': step, 'loss': float(lm_loss), 'images': seen, 'answers': answers,
                   'elapsed_s': time.time() - start}
            if att_loss is not None:
                rec['attn_loss'] = float(att_loss)
            log.write(json.dumps(rec) + '\n')
            log.flush()
            bar.set_postfix(loss=f'{float(lm_loss):.4f}',
                            att=f'{float(att_loss):.3f}' if att_loss is not None else '-')
        if args.max_minutes and time.time() - start > 60 * args.max_minutes:
            print(f'stopping at step {step}: --max-minutes {args.max_minutes} reached')
            break
    elapsed = time.time() - start
    model.eval()
    if sup:
        model.set_attn_implementation('sdpa')
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / 'tiny_vlm.json').write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + '\n')
    (out / 'grounding.json').write_text(json.dumps({'question_first': args.question_first,
                                                    'answer_style': args.answer_style}))
    metrics = {'args': vars(args), 'init_stats': stats, 'train_time_s': elapsed,
               'steps': step + 1,
               'images_per_s': seen / elapsed, 'answers_per_s': answers / elapsed,
               'train_images': len(train_set), 'answers_seen': answers}
    if args.eval:
        eval_set = gdata.load_set(args.eval, args.image_size)
        metrics['eval'] = evaluate.evaluate_dir(out, eval_set, train_set, args.threads)
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=2) + '\n')
    print(json.dumps({k: v for k, v in metrics.items() if k != 'args'}, indent=2))
    return metrics


def main(argv=None) -> None:
    """Command line: python -m trace_train.grounding.localize --train T --vision V --out D."""
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument('--train', required=True)
    p.add_argument('--eval', help='eval .npz (rendered with --blank) for metrics')
    p.add_argument('--vision', help='stage-1 vision_tower directory (else random init)')
    p.add_argument('--out', required=True)
    p.add_argument('--init', help='continue training this stage-2 checkpoint directory')
    p.add_argument('--vocab-corpus', nargs='*', default=[],
                   help='with --init: LLaVA json files whose text extends the vocabulary to '
                   '--vocab-size (for the later TRACE stage)')
    p.add_argument('--no-whiten', dest='whiten', action='store_false')
    p.add_argument('--image-size', type=int, default=224)
    p.add_argument('--patch-size', type=int, default=16)
    p.add_argument('--vocab-size', type=int, default=384)
    p.add_argument('--text-layers', type=int, default=4)
    p.add_argument('--text-hidden', type=int, default=192)
    p.add_argument('--steps', type=int, default=600)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--max-turns', type=int, default=4)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--vision-lr', type=float, default=0.0)
    p.add_argument('--warmup', type=int, default=50)
    p.add_argument('--question-first', action='store_true',
                   help='question before the image (then use --max-turns 1)')
    p.add_argument('--answer-style', choices=('points', 'trace'), default='points',
                   help="'points': [(x, y)]; 'trace': the dataset's 'The X is at (x, y).'")
    p.add_argument('--attn-sup', type=float, default=0.0,
                   help='weight of the training-time loss that steers decoder attention from '
                   'answer tokens to the patches of the asked object (0 = off)')
    p.add_argument('--attn-sup-heads', type=int, default=1,
                   help='supervised heads (the first N) in every decoder layer but the first')
    p.add_argument('--max-minutes', type=float, default=0.0, help='stop early after this')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    train(p.parse_args(argv))


if __name__ == '__main__':
    main()
