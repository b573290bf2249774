"""
A small OpenAI-compatible chat-completions server in front of any ``Backend``.

It serves ``POST /v1/chat/completions`` (streamed as server-sent events or not), ``GET /v1/models``
and ``GET /health``, with OpenAI-style JSON errors. The last user message must hold one image as a
base64 data URL; its text parts form the prompt. A reply regex (structured outputs) is read from
vLLM's ``structured_outputs: {"regex": ...}``, SGLang's ``regex`` or vLLM < 0.12's
``guided_regex`` and handed to the backend, which constrains its decoding with it. vLLM's
``min_tokens`` and ``ignore_eos`` (the reply runs to ``max_tokens``) hold the end back, for
fixed-length benchmarks; neither goes with a regex. Requests are
served one generation at a time by the backend; a client that disconnects cancels its
generation. Run it with
``python -m trace_ros.backends.openai_server --model DIR --port N``.
"""

import argparse
import base64
import binascii
import hmac
import http.server
import io
import json
import logging
import os
import select
import socket
import threading
import time
import uuid

import numpy as np
from PIL import Image, UnidentifiedImageError
from trace_ros.backends.base import Backend, BackendError, BackendTimeout

LOG = logging.getLogger(__name__)
_MAX_BODY = 64 * 1024 * 1024
_POLL_S = 0.1
_OTHER_CONSTRAINTS = ('json', 'json_object', 'choice', 'grammar', 'structural_tag')


class RequestError(Exception):
    """A request the server answers with an OpenAI-style error and an HTTP status."""

    def __init__(self, status: int, message: str, error_type: str = 'invalid_request_error',
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.param = status, message, error_type, param

    def body(self) -> dict:
        return {'error': {'message': self.message, 'type': self.error_type,
                          'param': self.param, 'code': self.status}}


def decode_data_url(url: str) -> np.ndarray:
    """Decode a ``data:image/...;base64,`` URL to an HxWx3 uint8 RGB array, or raise 400."""
    header, sep, data = url.partition(',')
    if not sep or not header.startswith('data:image/') or not header.endswith(';base64'):
        raise RequestError(400, 'image_url must be a base64 data URL (data:image/...;base64,...);'
                           ' this server fetches no remote images', param='messages')
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as image:
            return np.asarray(image.convert('RGB'))
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
        raise RequestError(400, f'cannot decode the image: {exc}', param='messages') from None


def parse_request(body: dict) -> tuple[np.ndarray, str]:
    """Return the image and prompt of the last user message of a chat-completions request."""
    messages = body.get('messages')
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, 'messages must be a non-empty list', param='messages')
    users = [m for m in messages if isinstance(m, dict) and m.get('role') == 'user']
    if not users:
        raise RequestError(400, 'no user message', param='messages')
    content = users[-1].get('content')
    parts = [{'type': 'text', 'text': content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        raise RequestError(400, 'message content must be a string or a list', param='messages')
    texts, images = [], []
    for part in parts:
        kind = part.get('type') if isinstance(part, dict) else None
        if kind == 'text':
            texts.append(str(part.get('text', '')))
        elif kind == 'image_url':
            url = part.get('image_url')
            images.append(url.get('url', '') if isinstance(url, dict) else str(url))
        else:
            raise RequestError(400, f'unsupported content part type {kind!r}', param='messages')
    if len(images) != 1:
        raise RequestError(400, f'the user message needs exactly one image, got {len(images)}',
                           param='messages')
    return decode_data_url(images[0]), '\n'.join(texts)


def request_regex(body: dict) -> str | None:
    """Return the reply regex a chat-completions request asks for, or None; 400 if unusable."""
    found = [body.get('regex'), body.get('guided_regex')]
    structured = body.get('structured_outputs')
    if structured is not None:
        if not isinstance(structured, dict):
            raise RequestError(400, 'structured_outputs must be an object',
                               param='structured_outputs')
        other = sorted(k for k in _OTHER_CONSTRAINTS if structured.get(k) is not None)
        if other:
            raise RequestError(400, f'structured_outputs {", ".join(other)} is not supported '
                               'by this server; only regex', param='structured_outputs')
        found.append(structured.get('regex'))
    found = [regex for regex in found if regex is not None]
    if len(found) > 1 or any(not isinstance(regex, str) or not regex for regex in found):
        raise RequestError(400, 'give one non-empty regex string', param='structured_outputs')
    return found[0] if found else None


def request_min_tokens(body: dict, max_tokens: int | None, regex: str | None) -> int | None:
    """Return the fewest tokens a reply must have (``min_tokens``, ``ignore_eos``), or None."""
    min_tokens = body.get('min_tokens')
    if min_tokens is not None and (not isinstance(min_tokens, int) or isinstance(min_tokens, bool)
                                   or min_tokens < 0):
        raise RequestError(400, 'min_tokens must be a non-negative integer', param='min_tokens')
    if body.get('ignore_eos'):
        if max_tokens is None:
            raise RequestError(400, 'ignore_eos needs max_tokens', param='ignore_eos')
        min_tokens = max_tokens
    if min_tokens and max_tokens is not None and min_tokens > max_tokens:
        raise RequestError(400, f'min_tokens {min_tokens} is over max_tokens {max_tokens}',
                           param='min_tokens')
    if min_tokens and regex:
        raise RequestError(400, 'min_tokens and ignore_eos cannot be combined with a reply regex',
                           param='min_tokens')
    return min_tokens or None


class ChatCompletionsHandler(http.server.BaseHTTPRequestHandler):
    """Request handler; the backend and settings live on the ``OpenAIServer``."""

    server_version = 'trace-openai/1.0'
    timeout = 120  # seconds a client may stall a socket read or write

    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        LOG.debug('%s %s', self.address_string(), format % args)

    def do_GET(self):
        """Serve the model list and the health check."""
        try:
            self._authorize()
            if self.path.rstrip('/') in ('/v1/models', '/models'):
                self._send_json(200, {'object': 'list', 'data': [{
                    'id': self.server.model_id, 'object': 'model',
                    'created': int(self.server.started), 'owned_by': 'trace_ros'}]})
            elif self.path.rstrip('/') == '/health':
                self._send_json(200, {'status': 'ok'})
            else:
                raise RequestError(404, f'no route {self.path}', 'not_found_error')
        except RequestError as exc:
            self._send_json(exc.status, exc.body())

    def do_POST(self):
        """Serve chat completions."""
        try:
            self._authorize()
            if self.path.rstrip('/') not in ('/v1/chat/completions', '/chat/completions'):
                raise RequestError(404, f'no route {self.path}', 'not_found_error')
            self._chat(self._read_json())
        except RequestError as exc:
            if exc.status >= 500:
                LOG.warning('request failed: %s', exc.message)
            self._send_json(exc.status, exc.body())
        except (BrokenPipeError, ConnectionResetError):
            LOG.info('client %s went away', self.address_string())

    def _authorize(self):
        key = self.server.api_key
        if key and not hmac.compare_digest(self.headers.get('Authorization', ''),
                                           f'Bearer {key}'):
            raise RequestError(401, 'invalid or missing API key', 'authentication_error')

    def _read_json(self) -> dict:
        length = int(self.headers.get('Content-Length') or 0)
        if not 0 < length <= _MAX_BODY:
            raise RequestError(400 if length <= 0 else 413, f'bad request body length {length}')
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError as exc:
            raise RequestError(400, f'the body is not valid JSON: {exc}') from None
        if not isinstance(body, dict):
            raise RequestError(400, 'the body must be a JSON object')
        return body

    def _chat(self, body: dict):
        model = body.get('model')
        if model and model != self.server.model_id:
            raise RequestError(404, f'the model {model!r} does not exist', 'not_found_error',
                               'model')
        image, prompt = parse_request(body)
        regex = request_regex(body)
        max_tokens = body.get('max_completion_tokens') or body.get('max_tokens')
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise RequestError(400, 'max_tokens must be a positive integer', param='max_tokens')
        min_tokens = request_min_tokens(body, max_tokens, regex)
        head = {'id': f'chatcmpl-{uuid.uuid4().hex}', 'created': int(time.time()),
                'model': self.server.model_id}
        logprobs = bool(body.get('logprobs'))
        if body.get('stream'):
            usage = bool((body.get('stream_options') or {}).get('include_usage'))
            self._stream(head, image, prompt, max_tokens, usage, regex, logprobs, min_tokens)
            return
        generation = self._generate(image, prompt, max_tokens, regex, min_tokens=min_tokens)
        choice = {'index': 0, 'message': {'role': 'assistant', 'content': generation.text},
                  'finish_reason': generation.finish_reason}
        if logprobs:
            choice['logprobs'] = _logprobs(generation)
        self._send_json(200, {**head, 'object': 'chat.completion', 'choices': [choice],
                              'usage': _usage(generation)})

    def _generate(self, image, prompt, max_tokens, regex, on_text=None, cancel=None,
                  min_tokens=None):
        cancel = cancel or threading.Event()
        done = threading.Event()
        watcher = threading.Thread(target=self._watch_client, args=(cancel, done), daemon=True)
        watcher.start()
        # Only when asked: a Backend written before min_new_tokens still serves the rest.
        extra = {'min_new_tokens': min_tokens} if min_tokens else {}
        try:
            return self.server.backend.generate(image, prompt, on_text=on_text, cancel=cancel,
                                                timeout_s=self.server.timeout_s,
                                                max_new_tokens=max_tokens, regex=regex, **extra)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None
        except BackendTimeout as exc:
            raise RequestError(504, str(exc), 'timeout_error') from None
        except BackendError as exc:
            raise RequestError(500, str(exc), 'server_error') from None
        finally:
            done.set()
            watcher.join()

    def _watch_client(self, cancel: threading.Event, done: threading.Event):
        """Set ``cancel`` once the client closes its connection while we generate."""
        while not done.wait(_POLL_S):
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    cancel.set()
                    return
            except (OSError, ValueError):
                cancel.set()
                return

    def _stream(self, head, image, prompt, max_tokens, usage, regex, logprobs=False,
                min_tokens=None):
        """
        Send the answer as server-sent events; a write error cancels the generation.

        Token log-probabilities, when asked for, come with the final chunk.
        """
        cancel = threading.Event()
        chunk = {**head, 'object': 'chat.completion.chunk'}

        def send(delta, finish_reason=None, **extra):
            self._send_event({**chunk, 'choices': [{'index': 0, 'delta': delta,
                                                    'finish_reason': finish_reason, **extra}]})

        def on_text(text):
            try:
                send({'content': text})
            except OSError:
                cancel.set()

        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-cache')
        self.end_headers()
        send({'role': 'assistant', 'content': ''})
        try:
            generation = self._generate(image, prompt, max_tokens, regex, on_text, cancel,
                                        min_tokens)
        except RequestError as exc:  # headers are sent: report the error in the stream
            LOG.warning('streamed request failed: %s', exc.message)
            self._send_event(exc.body())
            return
        if cancel.is_set():
            LOG.info('client %s went away; generation canceled', self.address_string())
            return
        send({}, 'length' if generation.finish_reason == 'length' else 'stop',
             **({'logprobs': _logprobs(generation)} if logprobs else {}))
        if usage:
            self._send_event({**chunk, 'choices': [], 'usage': _usage(generation)})
        self.wfile.write(b'data: [DONE]\n\n')
        self.wfile.flush()

    def _send_event(self, payload: dict):
        self.wfile.write(b'data: ' + json.dumps(payload).encode() + b'\n\n')
        self.wfile.flush()

    def _send_json(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _logprobs(generation) -> dict | None:
    """Return OpenAI ``logprobs`` of a generation's tokens (None when the backend has none)."""
    if generation.token_logprobs is None:
        return None
    return {'content': [{'token': token, 'logprob': logprob,
                         'bytes': list(token.encode('utf-8')), 'top_logprobs': []}
                        for token, logprob in generation.token_logprobs]}


def _usage(generation) -> dict:
    return {'prompt_tokens': 0, 'completion_tokens': generation.num_tokens,
            'total_tokens': generation.num_tokens}


class OpenAIServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server serving ``backend``; ``port`` 0 picks a free port."""

    daemon_threads = True

    def __init__(self, backend: Backend, host: str = '127.0.0.1', port: int = 0,
                 model_id: str | None = None, api_key: str | None = None,
                 timeout_s: float | None = None, handler=ChatCompletionsHandler):
        super().__init__((host, port), handler)
        self.backend = backend
        self.model_id = model_id or backend.model_id
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.started = time.time()

    @property
    def url(self) -> str:
        """Return the API root clients use as ``base_url``."""
        host, port = self.server_address[:2]
        return f'http://{host}:{port}/v1'

    def start(self) -> threading.Thread:
        """Serve on a daemon thread; stop with ``shutdown()`` then ``server_close()``."""
        thread = threading.Thread(target=self.serve_forever, args=(0.05,),
                                  name='trace-openai-server', daemon=True)
        thread.start()
        return thread


def main(argv: list[str] | None = None) -> None:
    """Serve a transformers model directory (or hub id) over the OpenAI protocol."""
    parser = argparse.ArgumentParser(description='OpenAI-compatible server for a local VLM')
    parser.add_argument('--model', required=True, help='model directory or hub id')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8000, help='0 picks a free port')
    parser.add_argument('--served-model-name', default=None)
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--max-new-tokens', type=int, default=256)
    parser.add_argument('--timeout-s', type=float, default=None, help='per-request deadline')
    parser.add_argument('--api-key-env', default=None,
                        help='environment variable holding the API key clients must send')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    from trace_ros.backends.hf_transformers import TransformersBackend
    backend = TransformersBackend(args.model, dtype=args.dtype, device=args.device,
                                  max_new_tokens=args.max_new_tokens,
                                  model_id=args.served_model_name)
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        parser.error(f'environment variable {args.api_key_env} is not set')
    server = OpenAIServer(backend, args.host, args.port, api_key=api_key,
                          timeout_s=args.timeout_s)
    LOG.info('serving %s at %s', server.model_id, server.url)
    print(f'listening on {server.url}', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        backend.close()


if __name__ == '__main__':
    main()
