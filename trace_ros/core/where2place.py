"""
Where2Place accuracy: the mean over questions of the fraction of answer points in the mask.

The default mode fixes the official scorer's quirks: points come from ``parse_answer`` (the
answer only, never the reasoning), the image size is the mask's, the mask is binarized
(>= 128 for 8-bit masks, >= 0.5 for float ones), an answer tuple the parser rejects counts
as a point outside the mask, a point on the far edge (x = 1) falls in the last pixel, and
answers without usable points or without an answer at all score 0 and are counted.

``official=True`` reproduces RoboPoint's ``robopoint/eval/summarize_vqa.py``: ``(...)``
tuples matched anywhere in the reply, values with a ``.`` scaled by 640x480 and truncated
(others taken as pixels), 4-tuples filled as boxes into a 640x480 grid, the JPEG mask
divided by 255 used as weights, points outside the mask scoring 0, and answers whose
parsing raises skipped (not counted; so are the rare answers on which the official script
crashes, integers beyond int64). Questions are matched to ``masks/{index:02d}.jpg`` by their
position in the question file, as there.
"""

import dataclasses
import json
import math
import os
import re
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
from PIL import Image
from trace_ros.core.parsing import parse_answer

OFFICIAL_SIZE = (640, 480)
QUESTION_FILE = 'point_questions.jsonl'
_OFFICIAL_NUMBER = r'[-+]?\d+(?:\.\d*)?'
_OFFICIAL_TUPLE_RE = re.compile(rf'\(({_OFFICIAL_NUMBER}(?:,\s*{_OFFICIAL_NUMBER})*)\)')


@dataclasses.dataclass(frozen=True)
class AnswerScore:
    """
    One answer's score; ``parsed`` False marks a parse failure.

    Default mode: a failure has no usable point and scores 0. Official mode: a failure is an
    answer whose parsing raised, skipped with ``score`` NaN.
    """

    score: float
    parsed: bool
    num_points: int
    errors: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Where2PlaceResult:
    """Accuracy over the scored questions, and per-question details keyed by question id."""

    accuracy: float
    scores: Dict[str, float]
    parse_failures: Tuple[str, ...]
    missing: Tuple[str, ...]
    num_questions: int
    official: bool
    details: Dict[str, AnswerScore]

    @property
    def parse_failure_rate(self) -> float:
        """Parse failures over all questions."""
        return len(self.parse_failures) / self.num_questions if self.num_questions else 0.0


def official_text2pts(text: str, width: int = OFFICIAL_SIZE[0],
                      height: int = OFFICIAL_SIZE[1]) -> np.ndarray:
    """Read points (x, y) in pixels as the official scorer does; raise where it raises."""
    points = []
    for match in _OFFICIAL_TUPLE_RE.finditer(text):
        values = [float(v) if '.' in v else int(v) for v in match.group(1).split(',')]
        if len(values) == 2:
            x, y = values
            if isinstance(x, float) or isinstance(y, float):
                x, y = int(x * width), int(y * height)
            points.append((x, y))
        elif len(values) == 4:
            if isinstance(values[0], float):
                values = [int(v * s) for v, s in zip(values, (width, height) * 2)]
            x0, y0, x1, y1 = values
            box = np.zeros((height, width), dtype=bool)
            box[y0:y1, x0:x1] = True
            rows, cols = np.nonzero(box)
            points.extend(np.stack([cols, rows], axis=1))
    return np.array(points)


def _binary(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'the mask must be a single-channel 2-D array, got shape {mask.shape}')
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.integer):
        return mask >= 128
    return mask >= 0.5


def _official_weights(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'the mask must be a single-channel 2-D array, got shape {mask.shape}')
    if np.issubdtype(mask.dtype, np.integer):
        return mask / 255.0
    return mask.astype(float)


def _score_official(text: str, mask: np.ndarray) -> AnswerScore:
    weights = _official_weights(mask)
    try:
        points = official_text2pts(text)
    except Exception as error:  # the official scorer skips an answer on any exception
        return AnswerScore(math.nan, False, 0, (f'official parsing raised {error!r}',))
    if len(points) == 0:
        return AnswerScore(0.0, True, 0)
    height, width = weights.shape
    inside = ((points[:, 0] >= 0) & (points[:, 0] < width)
              & (points[:, 1] >= 0) & (points[:, 1] < height))
    try:
        hits = weights[points[inside, 1], points[inside, 0]]
    except Exception as error:  # e.g. integers beyond int64: the official script crashes
        return AnswerScore(math.nan, False, len(points),
                           (f'the official scorer crashes on this answer: {error}',))
    score = np.concatenate([hits, np.zeros(len(points) - inside.sum())]).mean()
    return AnswerScore(float(score), True, len(points))


def score_answer(text: str, mask: np.ndarray, official: bool = False) -> AnswerScore:
    """
    Score one reply against a (height, width) ground-truth mask.

    Default mode binarizes the mask (module docstring); official mode uses it as weights
    (integer masks divided by 255, as the official scorer loads its JPEGs).
    """
    if official:
        return _score_official(text, mask)
    inside_mask = _binary(mask)
    height, width = inside_mask.shape
    parsed = parse_answer(text, image_size=(width, height))
    if not parsed.ok:
        return AnswerScore(0.0, False, 0, parsed.errors)
    cols = np.minimum((parsed.points[:, 0] * width).astype(int), width - 1)
    rows = np.minimum((parsed.points[:, 1] * height).astype(int), height - 1)
    hits = int(np.count_nonzero(inside_mask[rows, cols]))
    total = len(parsed.points) + parsed.rejected
    return AnswerScore(hits / total, True, len(parsed.points), parsed.errors)


def load_mask(path: str, official: bool = False) -> np.ndarray:
    """Load a mask image: binarized (grayscale >= 128), or official ``array / 255``."""
    with Image.open(path) as image:
        if official:
            return np.array(image) / 255.0
        return np.array(image.convert('L')) >= 128


def load_questions(folder: str, question_file: str = QUESTION_FILE) -> List[dict]:
    """Load the questions of a folder (``question_id``, ``image``, ``text``, ...)."""
    with open(os.path.join(folder, question_file), encoding='utf-8') as file:
        return [json.loads(line) for line in file if line.strip()]


def load_answers(path: str) -> Dict[str, str]:
    """Load an answer JSONL (``question_id`` and ``text`` per line) as {id: text}."""
    with open(path, encoding='utf-8') as file:
        rows = [json.loads(line) for line in file if line.strip()]
    return {str(row['question_id']): row['text'] for row in rows}


def mask_path(folder: str, question: Mapping, index: int, official: bool = False) -> str:
    """
    Find the mask of the ``index``-th question.

    Official: ``masks/{index:02d}.jpg``. Default: the first of ``masks/<image name>``,
    ``masks/<image stem>.png|.jpg``, ``masks/{index:02d}.jpg|.png`` that exists.
    """
    masks = os.path.join(folder, 'masks')
    if official:
        return os.path.join(masks, f'{index:02d}.jpg')
    image = os.path.basename(str(question.get('image', '')))
    stem = os.path.splitext(image)[0]
    names = [image, f'{stem}.png', f'{stem}.jpg', f'{index:02d}.jpg', f'{index:02d}.png']
    for name in names:
        if name and os.path.isfile(os.path.join(masks, name)):
            return os.path.join(masks, name)
    raise FileNotFoundError(f'no mask for question {question.get("question_id")} in {masks} '
                            f'(tried {", ".join(n for n in names if n)})')


def score_folder(folder: str, answers: Mapping, official: bool = False,
                 limit: Optional[int] = None,
                 question_file: str = QUESTION_FILE) -> Where2PlaceResult:
    """
    Score answers ({question id: reply}, ids compared as strings) on a Where2Place folder.

    ``limit`` scores only the first questions (the official ``--num_questions``). A question
    without an answer scores 0 by default and raises ValueError in official mode, where the
    official script, which pairs answers by line, would fail or misalign.
    """
    answers = {str(k): v for k, v in answers.items()}
    questions = load_questions(folder, question_file)[:limit]
    details, missing = {}, []
    for index, question in enumerate(questions):
        qid = str(question['question_id'])
        if qid not in answers:
            if official:
                raise ValueError(f'no answer for question {qid}')
            missing.append(qid)
            details[qid] = AnswerScore(0.0, False, 0, ('no answer',))
            continue
        mask = load_mask(mask_path(folder, question, index, official), official)
        details[qid] = score_answer(answers[qid], mask, official=official)
    scores = {k: d.score for k, d in details.items() if not math.isnan(d.score)}
    failures = tuple(k for k, d in details.items() if not d.parsed and k not in missing)
    accuracy = float(np.mean(list(scores.values()))) if scores else math.nan
    return Where2PlaceResult(accuracy, scores, failures, tuple(missing), len(questions),
                             official, details)
