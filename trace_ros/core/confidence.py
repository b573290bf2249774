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
    if not token_logprobs or ''.join(t for t, _ in token_logprobs) != text:
        return out
    lengths = np.array([len(t) for t, _ in token_logprobs])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    logprobs = np.array([float(lp) for _, lp in token_logprobs])
    spans = _coordinate_spans(text, parsed)
    if len(spans) != len(points):  # some tuples were rejected: match by value
        by_value = []
        for point in points:
            match = next((s for s in spans if np.allclose(s[0], point, atol=1e-9)), None)
            by_value.append(match)
        spans = by_value
    for i, span in enumerate(spans):
        if span is None:
            continue
        chosen = np.zeros(len(logprobs), dtype=bool)
        for begin, stop in span[1]:
            chosen |= (starts < stop) & (ends > begin)
        values = logprobs[chosen]
        if len(values) and np.all(np.isfinite(values)):
            out[i] = float(np.exp(np.mean(np.minimum(values, 0.0))))
    return out
