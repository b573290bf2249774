"""The OpenAI-compatible client against our real HTTP server in front of the tiny model."""

import base64
import contextlib
import functools
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from tiny_model import eos_token_id, noise_image, tiny_model_dir
from trace_ros.backends import BackendError, BackendTimeout, make_backend
from trace_ros.backends.openai_server import ChatCompletionsHandler, OpenAIServer

PROMPT = 'Place the red cup to the left of the plate.'
KEY_ENV = 'TRACE_TEST_API_KEY'
KEY = 'sk-test-0123456789abcdef'


class RecordingHandler(ChatCompletionsHandler):
    """Records requests; answers the first ``server.fail`` ones with ``server.fail_status``."""

    def do_POST(self):
        self.server.seen.append(self.headers.get('Authorization'))
        if len(self.server.seen) <= self.server.fail:
            body = json.dumps({'error': {'message': f'busy, got {self.server.seen[-1]}'}})
            self.send_response(self.server.fail_status)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
            return
        super().do_POST()


@pytest.fixture(scope='module')
def local():
    """Load the in-process backend; greedy, so the server must reproduce its answers exactly."""
    with make_backend('transformers', model=str(tiny_model_dir()), max_new_tokens=24) as loaded:
        yield loaded


def serve(backend):
    served = OpenAIServer(backend, api_key=KEY, handler=RecordingHandler)
    served.seen, served.fail, served.fail_status = [], 0, 503
    served.start()
    return served


@contextlib.contextmanager
def serving(backend):
    served = serve(backend)
    try:
        yield served
    finally:
        served.shutdown()
        served.server_close()


@pytest.fixture
def server(local):
    with serving(local) as served:
        yield served


@pytest.fixture
def endless_server(endless):
    with serving(endless) as served:
        yield served


@pytest.fixture
def client_for(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def make(**params):
        params = {'base_url': server.url, 'api_key_env': KEY_ENV, 'max_new_tokens': 24,
                  'backoff_s': 0.01, **params}
        return make_backend('openai', **params)
    return make


@pytest.mark.parametrize('stream', [True, False])
def test_same_answer_as_in_process(local, server, client_for, stream):
    expected = local.generate(noise_image(), PROMPT)
    deltas = []
    generation = client_for(stream=stream).generate(noise_image(), PROMPT, on_text=deltas.append)
    assert generation.text == expected.text and ''.join(deltas) == expected.text
    assert generation.num_tokens == expected.num_tokens
    assert generation.finish_reason == expected.finish_reason
    assert generation.model_id == 'tiny-llava'
    assert server.seen == [f'Bearer {KEY}']
    if stream:
        assert len(deltas) > 1


def test_model_discovery_and_list(client_for):
    client = client_for(model='')
    assert client.list_models() == ['tiny-llava']
    client.generate(noise_image(), PROMPT, max_new_tokens=2)
    assert client.model_id == 'tiny-llava'


def test_retries_503_then_succeeds(server, client_for):
    server.fail = 2
    generation = client_for(max_retries=2).generate(noise_image(), PROMPT)
    assert generation.text and len(server.seen) == 3


def test_gives_up_after_retries(server, client_for):
    server.fail = 10
    with pytest.raises(BackendError, match=r'HTTP 503.*after 2 attempts'):
        client_for(max_retries=1).generate(noise_image(), PROMPT)
    assert len(server.seen) == 2


def test_no_retry_on_4xx_and_the_key_stays_secret(server, client_for):
    server.fail, server.fail_status = 1, 400  # the error message echoes the Authorization header
    with pytest.raises(BackendError, match='HTTP 400') as raised:
        client_for(max_retries=3).generate(noise_image(), PROMPT)
    assert len(server.seen) == 1 and server.seen[0] == f'Bearer {KEY}'
    assert KEY not in str(raised.value) and '***' in str(raised.value)


def test_wrong_key_and_unknown_model_are_clear_errors(client_for, monkeypatch):
    with pytest.raises(BackendError, match="HTTP 404.*'nope' does not exist"):
        client_for(model='nope').generate(noise_image(), PROMPT)
    monkeypatch.setenv(KEY_ENV, 'sk-wrong-key')
    with pytest.raises(BackendError, match='HTTP 401') as raised:
        client_for().generate(noise_image(), PROMPT)
    assert 'sk-wrong-key' not in str(raised.value)


def test_connection_error_after_retries():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    client = make_backend('openai', base_url=f'http://127.0.0.1:{port}/v1', model='m',
                          max_retries=2, backoff_s=0.05)
    start = time.monotonic()
    with pytest.raises(BackendError, match='cannot reach.*after 3 attempts'):
        client.generate(noise_image(), PROMPT)
    assert time.monotonic() - start >= 0.15  # backoff 0.05 s, then 0.1 s


def test_bad_image_is_a_400(server):
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    for url in ('data:image/png;base64,' + base64.b64encode(b'not a png').decode(),
                'https://example.com/cup.png'):
        body = {'messages': [{'role': 'user', 'content': [
            {'type': 'image_url', 'image_url': {'url': url}}, {'type': 'text', 'text': 'x'}]}]}
        headers = {'Authorization': f'Bearer {KEY}', 'Content-Type': 'application/json'}
        conn.request('POST', '/v1/chat/completions', json.dumps(body), headers)
        response = conn.getresponse()
        error = json.loads(response.read())['error']
        assert response.status == 400 and error['type'] == 'invalid_request_error'
        assert 'image' in error['message']
        conn.close()


def test_cancel_closes_the_stream_and_frees_the_server(endless_server, client_for):
    for stream in (True, False):
        client = client_for(base_url=endless_server.url, stream=stream, max_new_tokens=4000)
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        start = time.monotonic()
        generation = client.generate(noise_image(), PROMPT, cancel=cancel)
        assert generation.finish_reason == 'canceled'
        assert time.monotonic() - start < 5.0  # 4000 tokens take over 7 s on these CPUs
    start = time.monotonic()
    client_for(base_url=endless_server.url, max_new_tokens=8).generate(noise_image(), PROMPT,
                                                                       timeout_s=5)
    # Generations run one at a time: a canceled 4000-token one still running would block this.
    assert time.monotonic() - start < 5.0


@pytest.mark.parametrize('stream', [True, False])
def test_timeout(endless_server, client_for, stream):
    client = client_for(base_url=endless_server.url, stream=stream, max_new_tokens=4000)
    start = time.monotonic()
    with pytest.raises(BackendTimeout):
        client.generate(noise_image(), PROMPT, timeout_s=0.3)
    assert time.monotonic() - start < 1.5


def test_command_line_server(tmp_path):
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    process = subprocess.Popen(
        [sys.executable, '-m', 'trace_ros.backends.openai_server', '--model',
         str(tiny_model_dir()), '--port', '0', '--max-new-tokens', '8'],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith('listening on '), line
        client = make_backend('openai', base_url=line.split()[-1], model='', timeout_s=30,
                              max_new_tokens=None)
        assert client.list_models() == ['tiny-llava']
        assert client.generate(noise_image(), PROMPT).num_tokens <= 8
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize('stream', [True, False])
def test_token_log_probs_come_through_the_server(local, client_for, stream):
    expected = local.generate(noise_image(), PROMPT).token_logprobs
    generation = client_for(stream=stream).generate(noise_image(), PROMPT)
    assert [t for t, _ in generation.token_logprobs] == [t for t, _ in expected]
    assert [lp for _, lp in generation.token_logprobs] == pytest.approx(
        [lp for _, lp in expected], abs=1e-5)
    assert client_for(stream=stream, logprobs=False).generate(
        noise_image(), PROMPT).token_logprobs is None


@pytest.fixture(scope='module')
def quick_to_end():
    """Load the tiny model biased to end at once: only min_tokens or ignore_eos go on."""
    with make_backend('transformers', model=str(tiny_model_dir()), max_new_tokens=24,
                      generation_kwargs={'sequence_bias': [[[eos_token_id()], 100.0]]}) as loaded:
        yield loaded


@pytest.mark.parametrize('stream', [True, False])
def test_min_tokens_and_ignore_eos_fix_the_reply_length(quick_to_end, client_for, stream):
    with serving(quick_to_end) as served:
        client = functools.partial(client_for, base_url=served.url, stream=stream)
        assert client().generate(noise_image(), PROMPT).num_tokens == 1  # the end token
        generation = client().generate(noise_image(), PROMPT, min_new_tokens=10)
        assert generation.num_tokens == 11 and generation.finish_reason == 'stop'  # + the end
        generation = client(extra_body={'ignore_eos': True}).generate(noise_image(), PROMPT,
                                                                      max_new_tokens=12)
        assert generation.num_tokens == 12 and generation.finish_reason == 'length'
        for kwargs, error in (({'min_new_tokens': 4, 'regex': 'a+'}, 'regex'),
                              ({'min_new_tokens': 30}, 'over max_tokens 24')):
            with pytest.raises(BackendError, match=f'HTTP 400.*{error}'):
                client().generate(noise_image(), PROMPT, **kwargs)
        with pytest.raises(BackendError, match='HTTP 400.*ignore_eos needs max_tokens'):
            client(max_new_tokens=None, extra_body={'ignore_eos': True}).generate(
                noise_image(), PROMPT)
