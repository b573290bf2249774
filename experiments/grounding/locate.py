"""
The localization task: "Where is the X?" questions, their answers and token sequences.

The answer is the visible-pixel centroid of the object in normalized image coordinates,
formatted as TRACE answers are (``[(0.42, 0.55)]``) or as the dataset's locate sentence. Each
training sequence holds one image and several question/answer turns (one per visible object),
so the image tokens are paid once for several targets.
"""

import json
import pathlib

from experiments.grounding import data as gdata
import numpy as np
import torch
from trace_ros.core.answer_format import (assistant_turn, format_locate_answer, format_points,
                                          user_turn)
from trace_ros.sim.objects import CATEGORIES
from trace_train.model import tiny_vlm

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
