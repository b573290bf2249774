"""
Hooks into transformers' generate(): per-token streaming, token log-probs, stop checks.

The in-process backend (hf_transformers) wires them into every generation: the streamer
prints each token's text as it comes, the log-prob recorder gives per-point confidence,
and the stop check ends a canceled or timed-out generation after the current token.
"""

import threading
import time

import torch
from transformers import LogitsProcessor, StoppingCriteria, TextIteratorStreamer


class TokenStreamer(TextIteratorStreamer):
    """
    Stream the text after every token, not only at word ends as TextIteratorStreamer does.

    Robot users watch reasoning appear token by token; a reply without spaces would
    otherwise arrive in one piece at the end. An incomplete UTF-8 character is held back.
    """

    pieces: list  # the text each generated token printed (its log-prob's token text)

    def put(self, value):
        if value.dim() > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            self.pieces = []
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith('\ufffd'):
            self.pieces.append('')
            return
        printable = text[self.print_len:]
        if text.endswith('\n'):
            self.token_cache, self.print_len = [], 0
        else:
            self.print_len += len(printable)
        self.pieces.append(printable)
        self.on_finalized_text(printable)


class TokenLogprobs(LogitsProcessor):
    """
    Record each generated token's log-probability under the scores this processor sees.

    The backend puts it first, so these are the model's own scores, before a grammar mask.
    """

    def __init__(self):
        self.values, self._last = [], None

    def __call__(self, input_ids, scores):
        if self._last is not None:  # the previous step's token is now the last input id
            self.values.append(float(self._last[input_ids[0, -1]]))
        self._last = torch.log_softmax(scores[0].float(), dim=-1)
        return scores

    def pairs(self, pieces: list, last_id: int) -> tuple | None:
        """Return (piece, log-prob) per generated token, or None when they do not line up."""
        values = self.values + ([float(self._last[last_id])] if self._last is not None else [])
        return tuple(zip(pieces, values)) if len(values) == len(pieces) else None


class StopCheck(StoppingCriteria):
    """Stops generation once an event is set or the deadline passes, remembering which."""

    def __init__(self, events: list[threading.Event], deadline: float | None):
        self.events = events
        self.deadline = deadline
        self.reason: str | None = None

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if self.reason is None:
            if any(event.is_set() for event in self.events):
                self.reason = 'canceled'
            elif self.deadline is not None and time.monotonic() > self.deadline:
                self.reason = 'timeout'
        return torch.full((input_ids.shape[0],), self.reason is not None, dtype=torch.bool,
                          device=input_ids.device)
