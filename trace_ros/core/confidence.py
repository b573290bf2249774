"""
The model's own confidence in each answer point, from the log-probabilities of its tokens.

Backends that can give per-token log-probabilities return them as ``(token text,
log-probability)`` pairs whose texts concatenate to the reply. A point's confidence is the
geometric mean probability of the tokens that wrote its two coordinates' significant digits
(those after the decimal point: ``0.`` is nearly certain and says nothing), in [0, 1].
"""

from typing import Optional, Sequence, Tuple

import numpy as np
from trace_ros.core.answer_format import LENIENT
from trace_ros.core.parsing import ParsedAnswer

TokenLogprobs = Sequence[Tuple[str, float]]


def _coordinate_spans(text: str, parsed: ParsedAnswer) -> list:
    """Return, per answer tuple with two numbers, the character spans of their digits."""
    start, end = parsed.span if parsed.span is not None else (0, len(text))
    spans = []
    for group in LENIENT['group'].finditer(text, start, end):
        numbers = list(LENIENT['number'].finditer(text, *group.span(1)))
        if len(numbers) < 2:
            continue
        digits = []
        for number in numbers[:2]:
            begin = text.find('.', *number.span())
            digits.append((begin + 1 if begin >= 0 else number.start(), number.end()))
        spans.append((tuple(float(n.group()) for n in numbers[:2]), digits))
    return spans


def point_confidences(text: str, parsed: ParsedAnswer,
                      token_logprobs: Optional[TokenLogprobs]) -> np.ndarray:
    """
    Return (N,) confidences in [0, 1] for ``parsed.points``; NaN where unknown.

    Unknown: no log-probabilities, token texts that do not spell ``text``, or a point whose
    tuple cannot be found (e.g. pixel answers where some tuples were rejected).
    """
    points = np.asarray(parsed.points, dtype=np.float64).reshape(-1, 2)
    out = np.full(len(points), np.nan)
    if not token_logprobs:
        return out
    texts, values = zip(*token_logprobs)
    if ''.join(texts) != text:
        return out
    ends = np.cumsum([len(t) for t in texts])
    starts = np.concatenate([[0], ends[:-1]])
    logprobs = np.array(values, dtype=np.float64)
    spans = _coordinate_spans(text, parsed)
    if len(spans) != len(points):  # some tuples were rejected: match by value
        by_value = []
        for point in points:
            match = next((s for s in spans if np.allclose(s[0], point, atol=1e-9)), None)
            by_value.append(match)
        spans = by_value
    found = [i for i, span in enumerate(spans) if span is not None]
    if not found:
        return out
    digits = np.array([spans[i][1] for i in found], dtype=np.intp)  # (F, 2, 2): begin, stop
    # The tokens overlapping [begin, stop) of each number: first[i] <= token < last[i].
    first = np.searchsorted(ends, digits[:, :, 0], side='right').tolist()
    last = np.searchsorted(starts, digits[:, :, 1], side='left').tolist()
    clipped = np.minimum(logprobs, 0.0)
    unknown = np.concatenate([[0], np.cumsum(~np.isfinite(logprobs))]).tolist()
    for i, (x_first, y_first), (x_last, y_last) in zip(found, first, last):
        ranges = [(a, b) for a, b in ((x_first, x_last), (y_first, y_last)) if b > a]
        if not ranges or any(unknown[b] > unknown[a] for a, b in ranges):
            continue  # no token, or one without a finite log-probability
        chosen = np.zeros(len(logprobs), dtype=bool)
        for a, b in ranges:
            chosen[a:b] = True
        out[i] = float(np.exp(clipped[chosen].mean()))
    return out
