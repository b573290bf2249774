"""Per-point model confidence from token log-probabilities."""

import numpy as np
from trace_ros.core.confidence import point_confidences
from trace_ros.core.parsing import parse_answer

REPLY = '1. Goal subtype: free space.\nAnswer: [(0.250, 0.500), (0.312, 0.875)]'


def by_character(text, logprob_of):
    return [(c, logprob_of(i, c)) for i, c in enumerate(text)]


def test_confidence_is_the_mean_probability_of_the_coordinate_digits():
    parsed = parse_answer(REPLY)
    second = REPLY.index('(0.312')
    tokens = by_character(REPLY, lambda i, c: (np.log(0.5) if i >= second else np.log(0.8))
                          if c.isdigit() else np.log(0.01))
    confidence = point_confidences(REPLY, parsed, tokens)
    # '0', '.' and the reasoning do not count (0.01 would drag both down); digits do.
    np.testing.assert_allclose(confidence, [0.8, 0.5])


def test_multi_character_tokens_count_once():
    parsed = parse_answer(REPLY)
    start = REPLY.index('[')
    pieces = [REPLY[:start], '[(0.', '25', '0, 0.', '5', '00), (0.', '312', ', 0.', '875',
              ')]']
    logprobs = [0.0, 0.0, np.log(0.9), np.log(0.6), np.log(0.3), 0.0, np.log(0.2), 0.0,
                np.log(0.8), 0.0]
    confidence = point_confidences(REPLY, parsed, list(zip(pieces, logprobs)))
    # Point 1: '25', '0, 0.' (it holds the last digit of 250), '5', '00), (0.';
    # point 2: '312' and '875' (', 0.' holds no digit after a decimal point).
    np.testing.assert_allclose(confidence[0], np.exp(np.mean(np.log([0.9, 0.6, 0.3, 1.0]))))
    np.testing.assert_allclose(confidence[1], np.sqrt(0.2 * 0.8))


def test_unknown_without_log_probs_or_when_tokens_do_not_spell_the_reply():
    parsed = parse_answer(REPLY)
    assert np.isnan(point_confidences(REPLY, parsed, None)).all()
    assert np.isnan(point_confidences(REPLY, parsed, [('Answer', -0.1)])).all()
    assert point_confidences(REPLY, parsed, None).shape == (2,)


def test_rejected_tuples_are_skipped_by_value():
    reply = 'Answer: [(0.250, 0.500), (7.0, nan), (0.312, 0.875)]'
    parsed = parse_answer(reply)
    assert len(parsed.points) == 2
    tokens = by_character(reply, lambda i, c: np.log(0.5) if c.isdigit() else 0.0)
    np.testing.assert_allclose(point_confidences(reply, parsed, tokens), [0.5, 0.5])
