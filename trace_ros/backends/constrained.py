"""
Grammar-constrained decoding for the in-process backend: a reply regex as a token mask.

llguidance (docs/STRUCTURED.md says why this library) reads the regex against the
tokenizer's byte-level vocabulary: before every token the tokens that cannot continue a
match are set to -inf, and the end tokens are allowed exactly when the text so far is a
whole match. A ``RegexConstraint`` holds one tokenizer's compiled matchers, one per regex
(compiled once, copied per request); a ``RegexLogitsProcessor`` masks one generation.
"""

import collections
import concurrent.futures
import threading
import time

import llguidance
import llguidance.hf
import numpy as np
import torch
from transformers import LogitsProcessor

_CACHE_SIZE = 16
# Computes the next token's mask while the model runs (llguidance releases the GIL).
_WORKER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='trace-grammar')


class RegexConstraint:
    """
    The tokenizer of one model, ready to mask its logits with any regex.

    ``vocab_size`` is the width of the model's logits (it may exceed the tokenizer's length:
    padded rows are never allowed); ``eos_ids`` are the tokens that end a reply (the
    generation config's, e.g. ChatML's ``<|im_end|>``). Compiled regexes are kept in an LRU
    cache of 16; ``compiled`` counts the compilations.
    """

    def __init__(self, tokenizer, vocab_size: int, eos_ids):
        if not hasattr(tokenizer, 'backend_tokenizer'):
            raise ValueError(f'structured decoding needs a tokenizers-backed tokenizer, got '
                             f'{type(tokenizer).__name__}')
        self.vocab_size = vocab_size
        self.eos_ids = sorted(eos_ids)
        self._tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size,
                                                       eos_token=self.eos_ids)
        self._matchers = collections.OrderedDict()
        self._lock = threading.Lock()
        self.compiled = 0

    def matcher(self, regex: str) -> llguidance.LLMatcher:
        """Return a fresh matcher of ``regex`` (ValueError if it does not compile)."""
        with self._lock:
            compiled = self._matchers.get(regex)
            if compiled is None:
                compiled = llguidance.LLMatcher(
                    self._tokenizer, llguidance.LLMatcher.grammar_from_regex(regex), log_level=0)
                if compiled.is_error():
                    raise ValueError(f'the reply regex does not compile: {compiled.get_error()}')
                self.compiled += 1
                self._matchers[regex] = compiled
                if len(self._matchers) > _CACHE_SIZE:
                    self._matchers.popitem(last=False)
            self._matchers.move_to_end(regex)
            return compiled.deep_copy()

    def processor(self, regex: str, speculate: bool = False) -> 'RegexLogitsProcessor':
        """Return a logits processor constraining one generation to ``regex``."""
        return RegexLogitsProcessor(self.matcher(regex), self.vocab_size, speculate)


class RegexLogitsProcessor(LogitsProcessor):
    """
    Mask the logits of one generation (batch of one) to the tokens the regex allows.

    The first call sees the prompt; every later one first feeds the matcher the token chosen
    last, then masks the scores in place. With ``speculate`` (greedy decoding, this processor
    last) the next mask is computed on a worker thread while the model runs its next step,
    for the token greedy decoding will pick (the masked argmax); a different pick is rolled
    back and computed again. A token chosen outside the mask (another processor fought the
    constraint, e.g. ``min_new_tokens`` past the regex's end) raises ``RuntimeError``.
    ``tokens`` and ``mask_s`` count the masked steps and the time generation waited on them.
    """

    def __init__(self, matcher: llguidance.LLMatcher, vocab_size: int, speculate: bool = False):
        self._matcher = matcher
        self._vocab_size = vocab_size
        self._bitmask = np.full((vocab_size + 31) // 32, -1, dtype=np.int32)
        self._speculate = speculate
        self._pending = None  # (predicted token, future of its mask)
        self._started = False
        self.tokens = 0
        self.mask_s = 0.0

    def _advance(self, token: int | None):
        """Feed ``token`` (None: nothing yet); return the blocked tokens, or None if refused."""
        if token is not None and not self._matcher.consume_token(token):
            return None
        self._matcher.unsafe_compute_mask_ptr(self._bitmask.ctypes.data, self._bitmask.nbytes)
        if self._matcher.is_error():
            raise RuntimeError(f'reply grammar error: {self._matcher.get_error()}')
        # numpy unpacks the bits 4x faster than torch ops on these small vectors.
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder='little')
        return torch.from_numpy(bits[:self._vocab_size] == 0)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        start = time.perf_counter()
        if input_ids.shape[0] != 1 or scores.shape[-1] != self._vocab_size:
            raise RuntimeError(f'constrained decoding takes one sequence of {self._vocab_size} '
                               f'logits, got {tuple(scores.shape)}')
        token = int(input_ids[0, -1]) if self._started else None
        self._started = True
        blocked = None
        if self._pending is not None:
            predicted, future = self._pending
            self._pending = None
            blocked = future.result()
            if predicted != token:
                self._matcher.rollback(1)
                blocked = None
        if blocked is None:
            blocked = self._advance(token)
        if blocked is None:
            raise RuntimeError(f'token {token} left the reply grammar (another logits '
                               f'processor overrode the mask): {self._matcher.get_error()}')
        scores.masked_fill_(blocked.to(scores.device), float('-inf'))
        if self._speculate:
            predicted = int(scores[0].argmax())
            self._pending = predicted, _WORKER.submit(self._advance, predicted)
        self.tokens += 1
        self.mask_s += time.perf_counter() - start
        return scores
