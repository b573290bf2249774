"""
Does a model use the image? Teacher-forced answer loss with real, blank and shuffled images.

``python -m trace_train.probe --model DIR --data data/eval/sim_w2p`` scores the reference
answers of a Where2Place-layout folder that carries them (our sim sets: ``cor`` and ``answer``
per question) under the prompt the node sends. A model that ignores the image has the same loss
with its real image, its mean colour (blank) and another scene's image (shuffled); a grounded
one is clearly better with the real image. ``--part points`` scores the coordinate digits only.
"""

import argparse
import json
import re

import numpy as np
from PIL import Image
import torch
from tqdm import tqdm
from trace_ros.core.prompts import build_prompt
from trace_ros.core.where2place import load_questions
from trace_train.evaluate import IMAGE_MODES, probe_image
from trace_train.finetune import ChatCollator
from transformers import AutoModelForImageTextToText, AutoProcessor

_DIGITS_AFTER_POINT = re.compile(r'(?<=\d\.)\d+')


def reply_text(question: dict, style: str) -> str:
    """Return the reference reply: the CoR (which ends with the answer) or the answer alone."""
    return question['cor'] if style == 'cor' else f'Answer: {question["answer"]}'


def answer_loss(model, collator: ChatCollator, image: np.ndarray, prompt: str, reply: str,
                part: str = 'reply') -> float:
    """Mean cross-entropy of ``reply`` (or of its coordinate digits) after the user turn."""
    encoded = collator.encode({'image': Image.fromarray(image), 'prompt': prompt,
                               'answer': reply})
    start = int((encoded['labels'][0] == -100).sum())  # the reply's first token
    tail = collator.tokenizer(reply, add_special_tokens=False, return_offsets_mapping=True)
    if part == 'points':
        spans = [m.span() for m in _DIGITS_AFTER_POINT.finditer(reply)]
        keep = [any(a <= lo < b for a, b in spans) for lo, _ in tail['offset_mapping']]
    else:
        keep = [True] * len(tail['input_ids'])
    input_ids = encoded['input_ids']
    labels = torch.full_like(input_ids, -100)
    reply_ids = input_ids[:, start:start + len(keep)]
    labels[:, start:start + len(keep)] = torch.where(torch.tensor([keep]), reply_ids, -100)
    with torch.no_grad():
        return float(model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                           pixel_values=encoded['pixel_values'], labels=labels).loss)


def probe(model_dir: str, folder: str, style: str = 'cor', part: str = 'reply',
          limit: int | None = None) -> dict:
    """Mean answer loss per image mode over the folder's questions, and the gaps to real."""
    collator = ChatCollator(AutoProcessor.from_pretrained(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    questions = load_questions(folder)[:limit]
    losses = {mode: [] for mode in IMAGE_MODES}
    for index, question in enumerate(tqdm(questions, desc='probe')):
        prompt = build_prompt(question['text'], style)
        for mode in IMAGE_MODES:
            image = probe_image(folder, questions, index, mode)
            losses[mode].append(answer_loss(model, collator, image, prompt,
                                            reply_text(question, style), part))
    mean = {mode: float(np.mean(values)) for mode, values in losses.items()}
    return {'model': model_dir, 'data': folder, 'style': style, 'part': part,
            'questions': len(questions), 'loss': mean,
            'gap_blank': mean['blank'] - mean['real'],
            'gap_shuffled': mean['shuffled'] - mean['real'],
            'real_better_than_shuffled': float(np.mean(
                np.array(losses['real']) < np.array(losses['shuffled'])))}


def main(argv=None) -> dict:
    """Command line: print the probe's losses as JSON (and write them with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', required=True, help='model directory (transformers)')
    parser.add_argument('--data', required=True, help='Where2Place-layout folder with answers')
    parser.add_argument('--style', choices=('cor', 'plain'), default='cor')
    parser.add_argument('--part', choices=('reply', 'points'), default='reply')
    parser.add_argument('--limit', type=int, default=None)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', help='JSON file for the result')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = probe(args.model, args.data, args.style, args.part, args.limit)
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as file:
            file.write(text + '\n')
    print(text)
    return result


if __name__ == '__main__':
    main()
