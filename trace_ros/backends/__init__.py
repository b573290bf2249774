"""Model backends behind one interface: in-process transformers or an OpenAI-compatible server."""

from trace_ros.backends.base import (Backend, BackendCanceled, BackendError, BackendTimeout,
                                     check_image, Generation, make_backend)

__all__ = ['Backend', 'BackendCanceled', 'BackendError', 'BackendTimeout', 'Generation',
           'check_image', 'make_backend']
