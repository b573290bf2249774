"""
The model backend interface: one image and one prompt in, the model's text out.

A backend streams text deltas while it generates, stops early when a cancel event is set, and
gives up with ``BackendTimeout`` past a deadline. Implementations: ``TransformersBackend``
(in-process) and ``OpenAIBackend`` (any OpenAI-compatible server, vLLM or ours); ``make_backend``
in ``trace_ros.backends`` picks one by name.
"""

import abc
import dataclasses
import threading
from typing import Callable, Literal, Sequence

import numpy as np
from trace_ros.core.attention import AttentionResult

FinishReason = Literal['stop', 'length', 'canceled']
TextCallback = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Generation:
    """What one ``generate`` call produced."""

    text: str
    num_tokens: int
    inference_s: float
    model_id: str
    finish_reason: FinishReason
    # (token text, log-probability) per generated token, the texts spelling ``text``; None
    # when the backend or server gives none.
    token_logprobs: tuple | None = None

    @property
    def tokens_per_s(self) -> float:
        """Return generated tokens per second over the whole call (0 when nothing was timed)."""
        return self.num_tokens / self.inference_s if self.inference_s > 0 else 0.0


class BackendError(Exception):
    """The backend could not produce an answer (model missing, server error, bad response)."""


class BackendTimeout(BackendError):
    """Generation ran past its deadline; ``partial`` holds what was generated until then."""

    def __init__(self, message: str, partial: Generation | None = None):
        super().__init__(message)
        self.partial = partial


class BackendCanceled(BackendError):
    """The backend was closed while generating (a caller's own cancel returns 'canceled')."""

    def __init__(self, message: str, partial: Generation | None = None):
        super().__init__(message)
        self.partial = partial


class Backend(abc.ABC):
    """A vision-language model answering one prompt about one image."""

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Name of the model, as reported in results and by the OpenAI server."""

    @abc.abstractmethod
    def generate(self, image: np.ndarray, prompt: str, on_text: TextCallback | None = None,
                 cancel: threading.Event | None = None, timeout_s: float | None = None,
                 max_new_tokens: int | None = None, regex: str | None = None,
                 min_new_tokens: int | None = None) -> Generation:
        """
        Answer ``prompt`` about ``image`` (HxWx3 uint8 RGB).

        ``on_text`` receives text deltas as they are generated, in the caller's thread; their
        concatenation equals the returned text. Setting ``cancel`` stops generation and returns
        what was generated with finish reason 'canceled'. Past ``timeout_s`` seconds it raises
        ``BackendTimeout``. ``max_new_tokens`` overrides the backend's default limit. ``regex``
        constrains the reply to match it (structured decoding; '' decodes freely, None keeps
        the backend's own ``reply_regex``); a reply cut at the token limit ends 'length' and
        may be an incomplete match. ``min_new_tokens`` holds the end back until the reply has
        that many tokens (capped at the limit; equal to it, every reply is exactly that long:
        fixed-length benchmarks). Invalid arguments (a regex that does not compile
        included) raise ``ValueError``; model or server failures raise ``BackendError``.
        """

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """Return the model's special tokens (prompt structure a user's text must not hold)."""
        return ()

    def count_tokens(self, text: str) -> int | None:
        """Return how many model tokens ``text`` is, or None when the backend cannot tell."""
        return None

    def attention_maps(self, image: np.ndarray, prompt: str, text: str | None = None,
                       layers: Sequence[int] | None = None, max_new_tokens: int | None = None,
                       token_maps: bool = False) -> AttentionResult:
        """
        Return where the reply to ``prompt`` looked in ``image``, per CoR step.

        The reply is generated greedily, or is ``text`` when given (a reply to score).
        ``layers`` are decoder layer indices to average (default all); ``token_maps`` adds a
        map per token. Only the in-process backend can; the others raise ``BackendError``.
        """
        raise BackendError(f'attention maps need the in-process transformers backend; '
                           f'{type(self).__name__} cannot provide them')

    def close(self) -> None:
        """Release the model or connections; the backend is unusable afterwards."""

    def __enter__(self) -> 'Backend':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a contiguous HxWx3 uint8 array, or raise ``ValueError`` saying why."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f'image must be a numpy array, got {type(image).__name__}')
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be HxWx3 RGB, got shape {image.shape}')
    if image.dtype != np.uint8:
        raise ValueError(f'image must be uint8, got {image.dtype}')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f'image is empty: shape {image.shape}')
    return np.ascontiguousarray(image)
