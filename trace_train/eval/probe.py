"""
Does a model use the image? Teacher-forced answer loss with real, blank and shuffled images.

``python -m trace_train.probe --model DIR --data data/eval/sim_w2p`` scores the reference
answers of a Where2Place-layout folder that carries them (our sim sets: ``cor`` and ``answer``
per question) under the prompt the node sends. A model that ignores the image has the same loss
with its real image, its mean colour (blank) and another scene's image (shuffled); a grounded
one is clearly better with the real image. ``--part points`` scores the coordinate digits only;
``--part reference`` only those of CoR step 2 (the reference's position), where the image has to
enter the reasoning: later coordinates can be read off the teacher-forced reasoning itself.
"""

import argparse
import json

import numpy as np
from PIL import Image
import torch
import torch.nn.functional as F
from tqdm import tqdm
from trace_ros.core.answer_format import decimal_spans
from trace_ros.core.parsing import step_spans
from trace_ros.core.prompts import build_prompt
from trace_ros.core.where2place import load_questions
from trace_train.eval.evaluate import IMAGE_MODES, probe_image
from trace_train.train.collator import ChatCollator
from transformers import AutoModelForImageTextToText, AutoProcessor

PARTS = ('reply', 'points', 'reference')


def scored_spans(reply: str, part: str) -> list[tuple[int, int]]:
    """Character spans of ``reply`` that ``part`` scores (the whole reply for 'reply')."""
    if part == 'reply':
        return [(0, len(reply))]
    if part == 'reference':
        step = step_spans(reply).get('reference')
        if step is None:
            raise ValueError(f'no CoR reference step in the reply: {reply[:80]!r}')
        begin, end = step
    else:
        begin, end = 0, len(reply)
    return decimal_spans(reply, begin, end)


def reply_text(question: dict, style: str) -> str:
    """Return the reference reply: the CoR (which ends with the answer) or the answer alone."""
    return question['cor'] if style == 'cor' else f'Answer: {question["answer"]}'


def token_losses(model, collator: ChatCollator, image: np.ndarray, prompt: str, reply: str,
                 part: str = 'reply') -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy of each reply token ``part`` scores, and its decimal place (0: no digit)."""
    encoded = collator.encode({'image': Image.fromarray(image), 'prompt': prompt,
                               'answer': reply})
    start = int((encoded['labels'][0] == -100).sum())  # the reply's first token
    offsets = collator.tokenizer(reply, add_special_tokens=False,
                                 return_offsets_mapping=True)['offset_mapping']
    spans = scored_spans(reply, part)
    digits = scored_spans(reply, 'points')
    keep = np.array([any(a <= lo < b for a, b in spans) for lo, _ in offsets])
    places = np.array([next((lo - a + 1 for a, b in digits if a <= lo < b), 0)
                       for lo, _ in offsets])
    input_ids = encoded['input_ids']
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                       pixel_values=encoded['pixel_values']).logits[0]
    targets = input_ids[0, start:start + len(offsets)]
    losses = F.cross_entropy(logits[start - 1:start - 1 + len(offsets)].float(), targets,
                             reduction='none').numpy()
    return losses[keep], places[keep]


def probe(model_dir: str, folder: str, style: str = 'cor', part: str = 'reply',
          limit: int | None = None) -> dict:
    """
    Mean answer loss per image mode over the folder's questions, and the gaps to real.

    ``loss_by_decimal_place`` splits the coordinate digits' loss by place (1: tenths, ...).
    """
    collator = ChatCollator(AutoProcessor.from_pretrained(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    questions = load_questions(folder)[:limit]
    losses = {mode: [] for mode in IMAGE_MODES}
    by_place = {mode: {} for mode in IMAGE_MODES}
    for index, question in enumerate(tqdm(questions, desc='probe')):
        prompt = build_prompt(question['text'], style)
        for mode in IMAGE_MODES:
            image = probe_image(folder, questions, index, mode)
            values, places = token_losses(model, collator, image, prompt,
                                          reply_text(question, style), part)
            losses[mode].append(float(values.mean()))
            for place in set(places[places > 0].tolist()):
                by_place[mode].setdefault(place, []).extend(values[places == place].tolist())
    mean = {mode: float(np.mean(values)) for mode, values in losses.items()}
    return {'model': model_dir, 'data': folder, 'style': style, 'part': part,
            'questions': len(questions), 'loss': mean,
            'gap_blank': mean['blank'] - mean['real'],
            'gap_shuffled': mean['shuffled'] - mean['real'],
            'real_better_than_shuffled': float(np.mean(
                np.array(losses['real']) < np.array(losses['shuffled']))),
            'loss_by_decimal_place': {mode: {place: float(np.mean(values))
                                             for place, values in sorted(places.items())}
                                      for mode, places in by_place.items()}}


def main(argv=None) -> dict:
    """Command line: print the probe's losses as JSON (and write them with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', required=True, help='model directory (transformers)')
    parser.add_argument('--data', required=True, help='Where2Place-layout folder with answers')
    parser.add_argument('--style', choices=('cor', 'plain'), default='cor')
    parser.add_argument('--part', choices=PARTS, default='reply')
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
