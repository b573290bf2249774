"""
In-process backend: any image-text-to-text model transformers loads with its Auto classes.

The model loads through the real ``from_pretrained`` path (a local directory, or a hub id where
the hub is reachable). Generation runs on a worker thread feeding a ``TextIteratorStreamer``; a
stopping criterion checks the cancel event and the deadline after every token, so a canceled or
timed-out generation really stops instead of running on in the background. With a reply regex
(``reply_regex``, or ``regex`` per request) a logits processor (``constrained``) keeps the reply
inside it: the streamed text is a prefix of a match, and a reply ending 'stop' is a whole match.

The calling thread waits for that worker only until the deadline (plus ``ABANDON_GRACE_S``): a
step that runs past it (the prompt step of a huge prompt) is reported as ``BackendTimeout`` at
once, and the model stays locked until the worker's step ends (the next call waits for the lock
within its own timeout).

``attention_maps`` scores a reply (generated greedily, or given) with one teacher-forced forward
pass over prompt + reply, eager attention switched on for that pass only: the attention each
reply token was predicted with (from the position before it) is what greedy ``generate`` computed
token by token. All layers' attention matrices (heads x tokens^2 each) are held during the pass.
"""

import copy
import os
import queue
import threading
import time
from typing import Sequence

import numpy as np
from PIL import Image
import torch
from trace_ros.backends.base import (Backend, BackendCanceled, BackendError, BackendTimeout,
                                     check_image, Generation, TextCallback)
from trace_ros.backends.generation_hooks import StopCheck, TokenLogprobs, TokenStreamer
from trace_ros.backends.processors import load_processor
from trace_ros.backends.reply_attention import (image_grid, layer_indices, reply_attention,
                                                token_offsets)
from trace_ros.core.answer_format import user_turn
from trace_ros.core.attention import AttentionResult, build_result
from transformers import AutoModelForImageTextToText, LogitsProcessorList, StoppingCriteriaList

DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
_POLL_S = 0.05
ABANDON_GRACE_S = 1.0


def _special_tokens(processor, tokenizer) -> tuple[str, ...]:
    """Every token string the tokenizer treats as special, and the processor's media tokens."""
    names = set(getattr(tokenizer, 'all_special_tokens', None) or [])
    for added in (getattr(tokenizer, 'added_tokens_decoder', None) or {}).values():
        if getattr(added, 'special', False):
            names.add(str(added.content))
    for attribute in ('image_token', 'video_token'):
        token = getattr(processor, attribute, None)
        if isinstance(token, str):
            names.add(token)
    return tuple(sorted(name for name in names if name.strip()))


def _resolve_source(model: str) -> str:
    """Return ``model`` as a local directory or hub id; a path that does not exist is an error."""
    expanded = os.path.expanduser(model)
    if os.path.isdir(expanded):
        return expanded
    if expanded.startswith(('/', '.')) or expanded.count('/') > 1 or os.path.exists(expanded):
        raise BackendError(f'model directory not found: {model}')
    return model


class TransformersBackend(Backend):
    """
    A transformers model running in this process.

    ``model`` is a local directory or a hub id; ``dtype`` is 'auto' (the checkpoint's dtype on
    CUDA, float32 on the CPU), 'float32', 'bfloat16' or 'float16'; ``device`` is 'cpu', 'cuda'
    or 'auto'. Decoding is greedy unless ``do_sample``; ``generation_kwargs`` go to
    ``model.generate`` as they are (e.g. ``repetition_penalty``). ``reply_regex`` constrains
    every reply to match it (e.g. ``answer_format.reply_regex('cor')``); None decodes freely.
    """

    def __init__(self, model: str, dtype: str = 'auto', device: str = 'auto',
                 max_new_tokens: int = 256, do_sample: bool = False,
                 generation_kwargs: dict | None = None, model_id: str | None = None,
                 trust_remote_code: bool = False, num_threads: int = 0,
                 reply_regex: str | None = None):
        if num_threads > 0:
            # Process-wide: leaves cores for the rest of the process (e.g. camera callbacks).
            torch.set_num_threads(num_threads)
        if dtype != 'auto' and dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
        if device not in ('cpu', 'cuda', 'auto'):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
        if max_new_tokens < 1:
            raise ValueError(f'max_new_tokens must be >= 1, got {max_new_tokens}')
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        elif device == 'cuda' and not torch.cuda.is_available():
            raise BackendError('device cuda requested but CUDA is not available')
        source = _resolve_source(model)
        torch_dtype = DTYPES.get(dtype, 'auto' if device == 'cuda' else torch.float32)
        try:
            self._processor = load_processor(source, trust_remote_code=trust_remote_code)
            self._model = AutoModelForImageTextToText.from_pretrained(
                source, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            detail = ' '.join(str(exc).split())  # e.g. a processor needing torchvision
            raise BackendError(f'cannot load model {model!r}: {detail}') from exc
        self._model.to(device).eval()
        self._device = device
        local = os.path.isdir(source)
        self._model_id = model_id or (os.path.basename(source.rstrip('/')) if local else source)
        self._tokenizer = getattr(self._processor, 'tokenizer', self._processor)
        self._max_new_tokens = max_new_tokens
        self._generation_config = copy.deepcopy(self._model.generation_config)
        self._generation_config.do_sample = do_sample
        # Config fields go into the config (mixing both is deprecated), the rest to generate().
        self._generation_kwargs = self._generation_config.update(**(generation_kwargs or {}))
        eos = self._generation_config.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self._reply_regex = reply_regex or None
        self._constraint = None  # built on the first constrained reply
        self._special_tokens = _special_tokens(self._processor, self._tokenizer)
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """Return the tokenizer's special tokens and the processor's media tokens."""
        return self._special_tokens

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens the tokenizer makes of ``text``."""
        return len(self._tokenizer(text, add_special_tokens=False)['input_ids'])

    @property
    def model_id(self) -> str:
        """Model name: ``model_id`` if given, else the directory name or hub id."""
        return self._model_id

    @property
    def device(self) -> str:
        """Return the torch device the model runs on."""
        return self._device

    def generate(self, image: np.ndarray, prompt: str, on_text: TextCallback | None = None,
                 cancel: threading.Event | None = None, timeout_s: float | None = None,
                 max_new_tokens: int | None = None, regex: str | None = None,
                 min_new_tokens: int | None = None) -> Generation:
        """
        Answer ``prompt`` about ``image``; see ``Backend.generate``.

        ``min_new_tokens`` with a reply regex is a ``ValueError``: the end token a finished
        match needs would be masked.
        """
        image = check_image(image)
        regex = self._reply_regex if regex is None else regex
        if min_new_tokens is not None and (not isinstance(min_new_tokens, int)
                                           or min_new_tokens < 0):
            raise ValueError(f'min_new_tokens must be a non-negative integer, got '
                             f'{min_new_tokens!r}')
        if min_new_tokens and regex:
            raise ValueError('min_new_tokens cannot be combined with a reply regex')
        start = time.monotonic()
        deadline = None if timeout_s is None else start + timeout_s
        if not self._lock.acquire(timeout=-1 if timeout_s is None else max(timeout_s, 0.0)):
            raise BackendTimeout(f'timed out after {timeout_s:.3g} s waiting for the model '
                                 '(a previous generation is still running)')
        owner = {'caller': True}  # False once an abandoned generation thread owns the lock
        try:
            if self._closed.is_set():
                raise BackendError('backend is closed')
            return self._generate(image, prompt, on_text, cancel, start, deadline,
                                  max_new_tokens or self._max_new_tokens, regex, owner,
                                  min_new_tokens)
        finally:
            if owner['caller']:
                self._lock.release()

    def _inputs(self, image: np.ndarray, prompt: str):
        """Apply the chat template (a user turn: the image, then the prompt) and the processor."""
        if getattr(self._processor, 'chat_template', None):
            text = self._processor.apply_chat_template(
                [user_turn(prompt)], add_generation_prompt=True, tokenize=False)
        else:
            token = getattr(self._processor, 'image_token', None)
            text = prompt if not token or token in prompt else f'{token}\n{prompt}'
        inputs = self._processor(images=[Image.fromarray(image)], text=[text],
                                 return_tensors='pt')
        return inputs.to(device=self._device, dtype=self._model.dtype)

    def _generate_kwargs(self, regex: str | None) -> dict:
        """Return the generate() kwargs, with a mask processor for ``regex`` when given."""
        if not regex:
            return self._generation_kwargs
        if self._constraint is None:
            from trace_ros.backends.constrained import RegexConstraint
            self._constraint = RegexConstraint(
                self._tokenizer, self._model.config.get_text_config().vocab_size, self._eos_ids)
        processors = list(self._generation_kwargs.get('logits_processor') or [])
        greedy = not self._generation_config.do_sample and self._generation_config.num_beams == 1
        processors.append(self._constraint.processor(regex, speculate=greedy))
        return {**self._generation_kwargs, 'logits_processor': LogitsProcessorList(processors)}

    def _generate(self, image, prompt, on_text, cancel, start, deadline, max_new_tokens, regex,
                  owner, min_new_tokens=None):
        kwargs = self._generate_kwargs(regex)  # a bad regex is the caller's ValueError
        try:
            inputs = self._inputs(image, prompt)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackendError(f'cannot prepare model inputs: {exc}') from exc
        prompt_len = inputs['input_ids'].shape[1]
        streamer = TokenStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True,
                                 timeout=_POLL_S)
        stop, abort = threading.Event(), threading.Event()  # past the deadline; caller error
        check = StopCheck([stop, abort, self._closed] + ([cancel] if cancel else []), deadline)
        config = copy.deepcopy(self._generation_config)
        config.max_new_tokens = max_new_tokens
        if min_new_tokens:
            config.min_new_tokens = min(min_new_tokens, max_new_tokens)
        logprobs = TokenLogprobs()  # first: the model's own distribution, before any mask
        kwargs = {**kwargs, 'logits_processor': LogitsProcessorList(
            [logprobs, *(kwargs.get('logits_processor') or [])])}
        result = {}
        handoff = threading.Lock()  # orders the worker's end against the caller giving up

        def work():
            try:
                with torch.inference_mode():
                    result['output'] = self._model.generate(
                        **inputs, generation_config=config, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([check]), **kwargs)
            except Exception as exc:  # reported by the calling thread
                result['error'] = exc
            finally:
                with handoff:
                    result['ended'] = True
                    if not owner['caller']:
                        self._lock.release()

        worker = threading.Thread(target=work, name='trace-generate', daemon=True)
        worker.start()
        deltas = []
        try:
            while True:
                try:
                    delta = next(streamer)
                except StopIteration:
                    break
                except queue.Empty:
                    if not worker.is_alive():
                        break
                    if deadline is not None and time.monotonic() > deadline:
                        stop.set()  # a long step: stop at the next token
                        if time.monotonic() > deadline + ABANDON_GRACE_S:
                            with handoff:
                                owner['caller'] = 'ended' in result
                            if not owner['caller']:
                                raise BackendTimeout(
                                    f'generation timed out after {time.monotonic() - start:.3g} '
                                    's inside one model step (a long prompt?); the model is '
                                    'busy until that step ends',
                                    Generation(''.join(deltas), len(deltas),
                                               time.monotonic() - start, self._model_id,
                                               'length'))
                    continue
                if delta:
                    deltas.append(delta)
                    if on_text is not None:
                        on_text(delta)
        except BaseException:
            abort.set()
            raise
        finally:
            if owner['caller']:
                worker.join()
        if 'error' in result:
            raise BackendError(f'generation failed: {result["error"]}') from result['error']
        output = result['output']
        sequences = output if isinstance(output, torch.Tensor) else output.sequences
        new_ids = sequences[0, prompt_len:].tolist()
        timed_out = deadline is not None and (check.reason == 'timeout' or stop.is_set())
        reason = 'stop'
        if check.reason is not None:
            reason = 'canceled'
        elif len(new_ids) >= max_new_tokens and new_ids[-1] not in self._eos_ids:
            reason = 'length'
        text = ''.join(deltas)
        pairs = logprobs.pairs(getattr(streamer, 'pieces', []), new_ids[-1]) if new_ids else None
        generation = Generation(text=text, num_tokens=len(new_ids),
                                inference_s=time.monotonic() - start, model_id=self._model_id,
                                finish_reason=reason, token_logprobs=pairs if pairs and ''.join(
                                    p for p, _ in pairs) == text else None)
        if self._closed.is_set() and check.reason is not None:
            raise BackendCanceled('backend closed during generation', generation)
        if timed_out:
            raise BackendTimeout(
                f'generation timed out after {generation.inference_s:.3g} s '
                f'({generation.num_tokens} tokens)', generation)
        return generation

    def attention_maps(self, image: np.ndarray, prompt: str, text: str | None = None,
                       layers: Sequence[int] | None = None, max_new_tokens: int | None = None,
                       token_maps: bool = False) -> AttentionResult:
        """Return where the reply looked in ``image``; see the module and Backend docstrings."""
        image = check_image(image)
        with self._lock:
            if self._closed.is_set():
                raise BackendError('backend is closed')
            config = self._model.config
            chosen = layer_indices(layers, config.get_text_config().num_hidden_layers)
            try:
                inputs = self._inputs(image, prompt)
            except (ValueError, TypeError, KeyError) as exc:
                raise BackendError(f'cannot prepare model inputs: {exc}') from exc
            grid, positions = image_grid(config, inputs)
            try:
                if text is None:
                    reply_ids = self._greedy(inputs, max_new_tokens or self._max_new_tokens)
                else:
                    reply_ids = self._tokenizer(text, add_special_tokens=False)['input_ids']
                attention = reply_attention(self._model, inputs, reply_ids, positions, chosen)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f'attention pass failed: {exc}') from exc
        reply, offsets = token_offsets(self._tokenizer, reply_ids)
        return build_result(reply, offsets, attention, grid, chosen, token_maps)

    def _greedy(self, inputs, max_new_tokens: int) -> list[int]:
        """Generate greedily without streaming; return the new token ids, end token removed."""
        config = copy.deepcopy(self._generation_config)
        config.do_sample = False
        config.max_new_tokens = max_new_tokens
        with torch.inference_mode():
            output = self._model.generate(**inputs, generation_config=config,
                                          **self._generate_kwargs(self._reply_regex))
        sequences = output if isinstance(output, torch.Tensor) else output.sequences
        ids = sequences[0, inputs['input_ids'].shape[1]:].tolist()
        while ids and ids[-1] in self._eos_ids:
            ids.pop()
        return ids

    def close(self) -> None:
        """Stop any generation in progress and free the model."""
        self._closed.set()
        with self._lock:
            self._model = None
            self._processor = None
            if self._device == 'cuda':
                torch.cuda.empty_cache()
