"""Model backends behind one interface: in-process transformers or an OpenAI-compatible server."""

from trace_ros.backends.base import (Backend, BackendCanceled, BackendError, BackendTimeout,
                                     check_image, Generation)

__all__ = ['Backend', 'BackendCanceled', 'BackendError', 'BackendTimeout', 'Generation',
           'check_image', 'make_backend']


def make_backend(kind: str, **params) -> Backend:
    """
    Create a backend by kind: 'transformers' (in-process) or 'openai' (HTTP client).

    ``params`` are the keyword arguments of ``TransformersBackend`` or ``OpenAIBackend``; each
    backend module is imported only when its kind is asked for.
    """
    if kind == 'transformers':
        from trace_ros.backends.hf_transformers import TransformersBackend
        return TransformersBackend(**params)
    if kind == 'openai':
        from trace_ros.backends.openai_client import OpenAIBackend
        return OpenAIBackend(**params)
    raise ValueError(f"unknown backend kind {kind!r}: expected 'transformers' or 'openai'")
