"""
Time the model backends on the tiny LLaVA model (or a given model directory), on this CPU.

Reports the build and load times, and tokens/s in-process and through the OpenAI-compatible
server (streamed and not). Run: ``python scripts/bench_backends.py [--model DIR] [--tokens N]``.
"""

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np
from trace_ros.backends import make_backend
from trace_ros.backends.openai_server import OpenAIServer
from trace_train.model.tiny_vlm import build_tiny_vlm
from transformers import GenerationConfig

TEXTS = ['Place the red cup to the left of the plate.',
         'Reasoning: the plate is at (0.42, 0.55). Answer: [(0.31, 0.56)]']


def tokens_per_s(backend, image, tokens, repeats):
    """Return the best tokens/s of ``repeats`` generations of exactly ``tokens`` tokens."""
    best = 0.0
    for _ in range(repeats):
        generation = backend.generate(image, 'Place the cup left of the plate.',
                                      max_new_tokens=tokens)
        best = max(best, generation.num_tokens / generation.inference_s)
    return round(best, 1)


def main():
    """Run the benchmark and print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', help='model directory; default: build the tiny model')
    parser.add_argument('--tokens', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            start = time.monotonic()
            model = str(build_tiny_vlm(pathlib.Path(scratch) / 'tiny-llava', TEXTS))
            results['build_s'] = round(time.monotonic() - start, 2)
        eos = GenerationConfig.from_pretrained(model).eos_token_id
        start = time.monotonic()
        backend = make_backend('transformers', model=model, generation_kwargs={
            'suppress_tokens': eos if isinstance(eos, list) else [eos]})  # exact lengths
        results['load_s'] = round(time.monotonic() - start, 2)
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        results['in_process_tokens_per_s'] = tokens_per_s(backend, image, args.tokens,
                                                          args.repeats)
        server = OpenAIServer(backend)
        server.start()
        for stream in (True, False):
            client = make_backend('openai', base_url=server.url, stream=stream)
            key = 'http_stream_tokens_per_s' if stream else 'http_tokens_per_s'
            results[key] = tokens_per_s(client, image, args.tokens, args.repeats)
        server.shutdown()
        server.server_close()
        backend.close()
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
