"""
OpenAI-compatible servers in a child process, for tests and benchmarks.

``vllm_command`` builds the command and environment of a vLLM server (its own venv, scratch
caches); ``own_server_command`` those of trace_ros's own server. ``running_server`` starts
one, waits until ``/models`` answers, yields the API root and stops it (terminate, then kill
the process group).
"""

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Tuple
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def vllm_command(python: str, model: str, port: int,
                 scratch: pathlib.Path) -> Tuple[List[str], Dict[str, str]]:
    """Return (command, environment) of vLLM's server on ``model``, caches under ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE='1', VLLM_CACHE_ROOT=str(scratch),
               TORCHINDUCTOR_CACHE_DIR=str(scratch), TMPDIR=str(scratch))
    env.pop('PYTHONPATH', None)  # vLLM's venv has its own torch and transformers
    return ([python, '-m', 'vllm.entrypoints.openai.api_server', '--model', model,
             '--port', str(port), '--enforce-eager', '--max-model-len', '2048'], env)


def own_server_command(model: str, port: int, max_new_tokens: int,
                       device: str = 'cpu') -> Tuple[List[str], Dict[str, str]]:
    """Return (command, environment) of ``trace_ros.backends.openai_server`` on ``model``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])))
    return ([sys.executable, '-m', 'trace_ros.backends.openai_server', '--model', model,
             '--port', str(port), '--max-new-tokens', str(max_new_tokens), '--device', device],
            env)


@contextlib.contextmanager
def running_server(command: List[str], env: Dict[str, str], port: int,
                   log_path: pathlib.Path, timeout_s: float = 300.0
                   ) -> Iterator[Tuple[subprocess.Popen, str]]:
    """
    Run ``command`` (a server on ``port``); yield (process, API root) once it lists models.

    Raises RuntimeError with the log's tail when the server exits or is not up in time.
    """
    url = f'http://127.0.0.1:{port}/v1'
    with open(log_path, 'w') as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    why = ('exited' if server.poll() is not None
                           else f'was not up in {timeout_s:.0f} s')
                    raise RuntimeError(f'{command[2]} {why}; {log_path}:\n'
                                       + log_path.read_text()[-3000:])
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(url + '/models', timeout=2.0).read()
                    break
                time.sleep(1.0)
            yield server, url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()
