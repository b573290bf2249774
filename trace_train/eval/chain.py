"""
Where along its reasoning does a CoR model lose accuracy? Give it the true first steps.

``python -m trace_train.chain --model DIR --data data/eval/sim_w2p --given 0 2 3`` answers every
question of a sim Where2Place-layout folder (one that carries each question's ``cor``) once per
``--given`` K: the reply starts with the first K lines (steps) of the true CoR, teacher-forced,
and the model writes the rest greedily. K = 0 is the normal evaluation; K = 2 gives the goal
subtype and the reference with its position; K = 3 also the target area with its box. Accuracy
(the core metric) per K shows which step costs how much; for K < 3 it also reports how well
the model's target-area box matches the true one (IoU), on object-reference questions, or, for
models that write the area's centre instead (``generate --point-order interior``), how often
that centre lies in the target mask.
"""

import argparse
import collections
import json
import pathlib

import numpy as np
from PIL import Image
import torch
from tqdm import tqdm
from trace_ros.core.answer_format import read_target_box, read_target_centre, user_turn
from trace_ros.core.parsing import parse_answer
from trace_ros.core.prompts import build_prompt
from trace_ros.core.where2place import load_mask, load_questions, mask_path, score_answer
from transformers import AutoModelForImageTextToText, AutoProcessor


def target_box(reply: str):
    """Return the (x0, y0, x1, y1) box of the reply's target-area step, or None."""
    return read_target_box(parse_answer(reply).target_area)


def target_centre(reply: str):
    """Return the (x, y) centre of the reply's target-area step, or None."""
    return read_target_centre(parse_answer(reply).target_area)


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (0 for empty ones)."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def given_steps(cor: str, steps: int) -> str:
    """Return the first ``steps`` lines of a CoR, each with its line break ("" for 0)."""
    lines = cor.split('\n')
    if steps > len(lines) - 1:
        raise ValueError(f'the CoR has {len(lines) - 1} steps before its answer, not {steps}')
    return ''.join(line + '\n' for line in lines[:steps])


class PrefixedGenerator:
    """Greedy replies of a transformers model that continue a given start of the reply."""

    def __init__(self, model_dir: str, max_new_tokens: int = 320):
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
        self.tokenizer = getattr(self.processor, 'tokenizer', self.processor)
        self.max_new_tokens = max_new_tokens

    def reply(self, image: Image.Image, prompt: str, start: str) -> str:
        """Return ``start`` followed by the model's continuation."""
        head = self.processor.apply_chat_template([user_turn(prompt)],
                                                  add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=[image], text=[head + start], return_tensors='pt')
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                         do_sample=False)
        new = output[0, inputs['input_ids'].shape[1]:]
        return start + self.tokenizer.decode(new, skip_special_tokens=True)


def run(generator: PrefixedGenerator, folder: str, given: list[int],
        limit: int | None = None) -> dict:
    """Answer the folder's questions once per K in ``given``; return the scores per K."""
    questions = load_questions(folder)[:limit]
    if any('cor' not in q for q in questions):
        raise ValueError(f'{folder}: the questions carry no true CoR ("cor"); use a sim set')
    result = {}
    for steps in given:
        per_relation, ious, centres, rows = collections.defaultdict(list), [], [], []
        for index, question in enumerate(tqdm(questions, desc=f'{steps} steps given')):
            with Image.open(pathlib.Path(folder, 'images', question['image'])) as image:
                reply = generator.reply(image.convert('RGB'),
                                        build_prompt(question['text']),
                                        given_steps(question['cor'], steps))
            mask = load_mask(mask_path(folder, question, index))
            score = score_answer(reply, mask).score
            centre = target_centre(reply) if steps < 3 else None
            if centre is not None:
                centres.append(score_answer(f'[{centre}]', mask).score)
            per_relation[question.get('category', '')].append(score)
            if steps < 3 and question.get('goal_subtype') == 'object reference':
                box, true = target_box(reply), target_box(question['cor'])
                if true is not None and centre is None:
                    ious.append(box_iou(box, true) if box is not None else 0.0)
            rows.append({'question_id': question['question_id'], 'text': reply,
                         'score': score})
        scores = [s for values in per_relation.values() for s in values]
        result[steps] = {
            'accuracy': float(np.mean(scores)),
            'per_relation': {k: float(np.mean(v)) for k, v in sorted(per_relation.items())},
            'object_reference_box_iou': float(np.mean(ious)) if ious else None,
            'object_reference_box_iou_over_0.5': float(np.mean(np.array(ious) > 0.5))
            if ious else None,
            'target_centre_in_mask': float(np.mean(centres)) if centres else None,
            'answers': rows}
    return result


def plot(result: dict, path: pathlib.Path) -> None:
    """Accuracy against the number of true steps given."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    steps = sorted(result)
    figure, axis = pyplot.subplots(figsize=(4.2, 3.0))
    bars = axis.bar([str(k) for k in steps], [100 * result[k]['accuracy'] for k in steps])
    axis.bar_label(bars, fmt='%.1f')
    axis.set_xlabel('true CoR steps given')
    axis.set_ylabel('accuracy (%)')
    axis.set_ylim(0, 100)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def main(argv=None) -> dict:
    """Command line: write OUT/chain.json (answers included) and OUT/chain.png."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', required=True, help='model directory (transformers)')
    parser.add_argument('--data', required=True, help='sim Where2Place-layout folder')
    parser.add_argument('--out', required=True)
    parser.add_argument('--given', type=int, nargs='+', default=[0, 2, 3],
                        help='numbers of true CoR steps to give (0-4)')
    parser.add_argument('--limit', type=int, default=None, help='first N questions only')
    parser.add_argument('--max-new-tokens', type=int, default=320)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    if any(not 0 <= k <= 4 for k in args.given):
        parser.error('--given takes numbers of steps from 0 to 4')
    torch.set_num_threads(args.threads)
    result = run(PrefixedGenerator(args.model, args.max_new_tokens), args.data, args.given,
                 args.limit)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'chain.json').write_text(json.dumps(result, indent=2) + '\n')
    plot(result, out / 'chain.png')
    print(json.dumps({k: {key: v for key, v in r.items() if key != 'answers'}
                      for k, r in result.items()}, indent=2))
    return result


if __name__ == '__main__':
    main()
