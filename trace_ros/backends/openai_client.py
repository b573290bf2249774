"""
Backend for any OpenAI-compatible chat-completions server (vLLM, our ``openai_server``, ...).

Stdlib HTTP only. The image travels as a base64 data URL in an ``image_url`` content part; answers
stream as server-sent events or come in one JSON body. Connection errors and HTTP 429/5xx are
retried with exponential backoff, other 4xx are not. The API key is read from an environment
variable at each request and never logged or put in an error message. Cancel and the deadline
close the connection from a watcher thread, which also stops the server's generation. A reply regex
travels in the server's structured-output field: vLLM (>= 0.12) reads
``structured_outputs: {"regex": ...}``, SGLang a top-level ``regex``; our server reads both.
"""

import base64
import http.client
import io
import json
import os
import socket
import threading
import time
import urllib.parse

import numpy as np
from PIL import Image
from trace_ros.backends.base import (Backend, BackendError, BackendTimeout, check_image,
                                     Generation, TextCallback)
from trace_ros.core.answer_format import user_turn

_POLL_S = 0.05
_MAX_BACKOFF_S = 30.0
STRUCTURED_OUTPUT_FIELDS = ('vllm', 'sglang', 'none')


class _Canceled(Exception):
    """Internal: the caller's cancel event was set."""


def encode_image(image: np.ndarray, image_format: str = 'png') -> str:
    """Return ``image`` (HxWx3 uint8 RGB) as a data URL: lossless PNG or JPEG (quality 90)."""
    buffer = io.BytesIO()
    if image_format == 'png':
        Image.fromarray(check_image(image)).save(buffer, format='PNG', compress_level=1)
    else:
        Image.fromarray(check_image(image)).save(buffer, format='JPEG', quality=90)
    return f'data:image/{image_format};base64,' + base64.b64encode(buffer.getvalue()).decode()


def structured_output(regex: str | None, field: str) -> dict:
    """Return the request fields asking a server of kind ``field`` for replies matching regex."""
    if not regex or field == 'none':
        return {}
    return {'regex': regex} if field == 'sglang' else {'structured_outputs': {'regex': regex}}


def iter_sse_data(lines):
    """Yield the ``data`` of each server-sent event read from an iterable of byte lines."""
    data = []
    for raw in lines:
        line = raw.decode('utf-8').rstrip('\r\n')
        if not line:
            if data:
                yield '\n'.join(data)
                data = []
            continue
        field, _, value = line.partition(':')
        if field == 'data':
            data.append(value[1:] if value.startswith(' ') else value)
    if data:
        yield '\n'.join(data)


class _Watch:
    """Shuts a connection's socket down once cancel is set or the deadline passes."""

    def __init__(self, conn: http.client.HTTPConnection, cancel: threading.Event | None,
                 deadline: float):
        self.reason: str | None = None
        self.sock = None  # set once connected: the connection drops it when the response ends
        self._conn, self._cancel, self._deadline = conn, cancel, deadline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name='trace-http-watch', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(_POLL_S):
            if self._cancel is not None and self._cancel.is_set():
                self.reason = 'canceled'
            elif time.monotonic() > self._deadline:
                self.reason = 'timeout'
            else:
                continue
            sock = self.sock or self._conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


class OpenAIBackend(Backend):
    """
    A client of an OpenAI-compatible ``/chat/completions`` endpoint.

    ``base_url`` ends at the API root (e.g. ``http://host:8000/v1``); an empty ``model`` takes
    the first one the server lists. ``timeout_s`` is the default deadline of a whole call, retries
    included; ``max_retries`` retries follow a failed attempt after ``backoff_s``, doubling each
    time. ``max_new_tokens`` None leaves the limit to the server. ``extra_body`` fields are merged
    into each request (e.g. vLLM's ``top_k``). ``logprobs`` asks for the answer's token
    log-probabilities (``Generation.token_logprobs``; None when the server sends none).
    ``reply_regex`` constrains every reply on the server; ``structured_output_field`` says
    how to send it: 'vllm', 'sglang' or 'none' (a server without structured outputs: the
    regex is not sent).
    """

    def __init__(self, base_url: str = 'http://127.0.0.1:8000/v1', model: str = '',
                 timeout_s: float = 60.0, max_retries: int = 3, backoff_s: float = 0.5,
                 api_key_env: str = 'OPENAI_API_KEY', max_new_tokens: int | None = 256,
                 temperature: float = 0.0, stream: bool = True, image_format: str = 'png',
                 extra_body: dict | None = None, logprobs: bool = True,
                 reply_regex: str | None = None, structured_output_field: str = 'vllm'):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ('http', 'https') or not url.hostname:
            raise ValueError(f'base_url must be an http(s) URL, got {base_url!r}')
        if image_format not in ('png', 'jpeg'):
            raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        if structured_output_field not in STRUCTURED_OUTPUT_FIELDS:
            raise ValueError(f'structured_output_field must be one of '
                             f'{", ".join(STRUCTURED_OUTPUT_FIELDS)}, got '
                             f'{structured_output_field!r}')
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or (max_new_tokens or 1) < 1:
            raise ValueError('timeout_s and max_new_tokens must be positive, '
                             'max_retries and backoff_s non-negative')
        self._url = url
        self._where = f'{url.scheme}://{url.hostname}' + (f':{url.port}' if url.port else '')
        self._model = model
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._api_key_env = api_key_env
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._stream = stream
        self._image_format = image_format
        self._extra_body = dict(extra_body or {})
        self._logprobs = logprobs
        self._reply_regex = reply_regex or None
        self._structured_output_field = structured_output_field

    @property
    def model_id(self) -> str:
        """Return the model asked of the server (empty until discovered if not configured)."""
        return self._model

    def list_models(self, timeout_s: float | None = None) -> list[str]:
        """Return the ids of the models the server serves (``GET /models``)."""
        deadline = time.monotonic() + (timeout_s or self._timeout_s)
        conn, response, watch = self._open('GET', 'models', None, None, deadline)
        try:
            body = json.loads(response.read())
            return [entry['id'] for entry in body['data']]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f'bad model list from {self._where}: {exc}') from exc
        finally:
            watch.stop()
            conn.close()

    def generate(self, image: np.ndarray, prompt: str, on_text: TextCallback | None = None,
                 cancel: threading.Event | None = None, timeout_s: float | None = None,
                 max_new_tokens: int | None = None, regex: str | None = None,
                 min_new_tokens: int | None = None) -> Generation:
        """Answer ``prompt`` about ``image`` through the server; see ``Backend.generate``."""
        start = time.monotonic()
        deadline = start + (timeout_s if timeout_s is not None else self._timeout_s)
        user = user_turn(prompt, image_url=encode_image(image, self._image_format))
        if not self._model:
            models = self.list_models(max(deadline - time.monotonic(), _POLL_S))
            if not models:
                raise BackendError(f'server at {self._where} lists no models')
            self._model = models[0]
        body = {'model': self._model, 'messages': [user],
                'temperature': self._temperature, 'stream': self._stream}
        if self._logprobs:
            body['logprobs'] = True
        if max_new_tokens or self._max_new_tokens:
            body['max_tokens'] = max_new_tokens or self._max_new_tokens
        if min_new_tokens:
            body['min_tokens'] = min_new_tokens  # vLLM's field; our server reads it too
        body.update(structured_output(self._reply_regex if regex is None else regex,
                                      self._structured_output_field))
        body.update(self._extra_body)
        if self._stream:
            body['stream_options'] = {'include_usage': True}
        deltas = []
        state = {'num_tokens': None, 'finish_reason': None, 'model': self._model, 'logprobs': []}
        try:
            conn, response, watch = self._open('POST', 'chat/completions', body, cancel,
                                               deadline)
        except _Canceled:
            return self._result(deltas, state, start, 'canceled')
        try:
            if self._stream:
                self._read_stream(response, deltas, state, on_text)
            else:
                self._read_body(response, deltas, state, on_text)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            watch.stop()
            if watch.reason == 'canceled':
                return self._result(deltas, state, start, 'canceled')
            if watch.reason == 'timeout' or isinstance(exc, TimeoutError):
                # The socket's own timeout is the time left to the deadline.
                raise BackendTimeout(f'no complete answer from {self._where} within '
                                     f'{deadline - start:.3g} s',
                                     self._result(deltas, state, start, 'canceled')) from None
            raise BackendError(f'bad answer from {self._where}: '
                               f'{self._scrub(str(exc))}') from None
        finally:
            watch.stop()
            conn.close()
        reason = 'length' if state['finish_reason'] == 'length' else 'stop'
        return self._result(deltas, state, start, reason)

    def _result(self, deltas, state, start, reason) -> Generation:
        num_tokens = state['num_tokens']
        text, pairs = ''.join(deltas), tuple(state['logprobs'])
        return Generation(text=text,
                          num_tokens=len(deltas) if num_tokens is None else num_tokens,
                          inference_s=time.monotonic() - start, model_id=state['model'],
                          finish_reason=reason, token_logprobs=pairs if pairs and ''.join(
                              t for t, _ in pairs) == text else None)

    def _read_stream(self, response, deltas, state, on_text) -> None:
        for data in iter_sse_data(response):
            if data.strip() == '[DONE]':
                return
            chunk = json.loads(data)
            if 'error' in chunk:
                raise ValueError(f'server error: {_error_message(chunk)}')
            state['model'] = chunk.get('model') or state['model']
            if chunk.get('usage'):
                state['num_tokens'] = chunk['usage'].get('completion_tokens')
            for choice in chunk.get('choices') or []:
                delta = (choice.get('delta') or {}).get('content')
                if delta:
                    deltas.append(delta)
                    if on_text is not None:
                        on_text(delta)
                state['finish_reason'] = choice.get('finish_reason') or state['finish_reason']
                _add_logprobs(state, choice)
        if state['finish_reason'] is None:
            raise ValueError('the stream ended before the answer did')

    def _read_body(self, response, deltas, state, on_text) -> None:
        body = json.loads(response.read())
        try:
            choice = body['choices'][0]
            text = choice['message']['content'] or ''
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f'no choices[0].message.content in the answer ({exc})') from None
        state['model'] = body.get('model') or state['model']
        state['num_tokens'] = (body.get('usage') or {}).get('completion_tokens')
        state['finish_reason'] = choice.get('finish_reason')
        _add_logprobs(state, choice)
        if text:
            deltas.append(text)
            if on_text is not None:
                on_text(text)

    def _open(self, method, path, body, cancel, deadline):
        """Send a request, retrying what may succeed later; return a 200 response and its watch."""
        payload = None if body is None else json.dumps(body).encode()
        error = ''
        for attempt in range(self._max_retries + 1):
            if cancel is not None and cancel.is_set():
                raise _Canceled()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BackendTimeout(f'no answer from {self._where} in time ({error})'
                                     if error else f'no answer from {self._where} in time')
            conn_class = (http.client.HTTPSConnection if self._url.scheme == 'https'
                          else http.client.HTTPConnection)
            conn = conn_class(self._url.hostname, self._url.port, timeout=remaining)
            watch = _Watch(conn, cancel, deadline)
            retry_after, socket_timeout = None, False
            try:
                conn.request(method, self._url.path.rstrip('/') + '/' + path, payload,
                             self._headers(payload is not None))
                watch.sock = conn.sock
                response = conn.getresponse()
                if response.status == 200:
                    return conn, response, watch
                retry_after = response.getheader('Retry-After')
                error = f'HTTP {response.status} from {self._where}: {self._read_error(response)}'
                retryable = response.status == 429 or response.status >= 500
            except (OSError, http.client.HTTPException) as exc:
                reason = self._scrub(f'{type(exc).__name__}: {exc}')
                error = f'cannot reach {self._where}: {reason}'
                retryable = True
                socket_timeout = isinstance(exc, TimeoutError)  # the socket used `remaining`
            watch.stop()
            conn.close()
            if watch.reason == 'canceled':
                raise _Canceled()
            if watch.reason == 'timeout' or socket_timeout:
                raise BackendTimeout(f'no answer from {self._where} in time')
            if not retryable:
                raise BackendError(error)
            if attempt < self._max_retries:
                delay = min(self._backoff_s * 2 ** attempt, _MAX_BACKOFF_S)
                if retry_after and retry_after.isdigit():
                    delay = min(max(delay, float(retry_after)), _MAX_BACKOFF_S)
                if time.monotonic() + delay > deadline:
                    raise BackendTimeout(f'no answer from {self._where} in time ({error})')
                if cancel is not None and cancel.wait(delay):
                    raise _Canceled()
                if cancel is None:
                    time.sleep(delay)
        raise BackendError(f'{error} (after {self._max_retries + 1} attempts)')

    def _headers(self, has_body: bool) -> dict:
        headers = {'Accept': 'application/json, text/event-stream'}
        if has_body:
            headers['Content-Type'] = 'application/json'
        key = os.environ.get(self._api_key_env, '')
        if key:
            headers['Authorization'] = f'Bearer {key}'
        return headers

    def _read_error(self, response) -> str:
        """Return the error message of a failed response, without the API key."""
        raw = response.read(65536)
        try:
            message = _error_message(json.loads(raw))
        except ValueError:
            message = raw.decode('utf-8', 'replace').strip()[:500] or response.reason
        return self._scrub(message)

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self._api_key_env, '')
        return text.replace(key, '***') if key else text


def _add_logprobs(state: dict, choice: dict) -> None:
    """Append a choice's ``logprobs.content`` entries as (token, log-prob) to the state."""
    for entry in (choice.get('logprobs') or {}).get('content') or []:
        try:
            state['logprobs'].append((str(entry['token']), float(entry['logprob'])))
        except (KeyError, TypeError, ValueError):
            continue


def _error_message(body) -> str:
    """Return the message of an OpenAI-style error body ``{"error": {"message": ...}}``."""
    error = body.get('error') if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get('message') or error)
    return str(error if error is not None else body)[:500]
