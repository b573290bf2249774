"""The in-process transformers backend on the tiny LLaVA model: streaming, cancel, timeout."""

import threading
import time

import pytest
from tiny_model import eos_token_id, noise_image, tiny_model_dir
from trace_ros.backends import (BackendCanceled, BackendError, BackendTimeout, Generation,
                                make_backend)

PROMPT = 'Place the red cup to the left of the plate.'


@pytest.fixture(scope='module')
def backend():
    with make_backend('transformers', model=str(tiny_model_dir()), device='cpu',
                      max_new_tokens=24) as loaded:
        yield loaded


def test_generates_greedily(backend):
    first = backend.generate(noise_image(), PROMPT)
    second = backend.generate(noise_image(), PROMPT)
    assert isinstance(first, Generation)
    assert first.text and first.text == second.text
    assert 0 < first.num_tokens <= 24
    assert first.finish_reason in ('stop', 'length')
    assert first.model_id == 'tiny-llava' and first.inference_s > 0


def test_stream_deltas_concatenate_to_the_text(backend):
    deltas = []
    generation = backend.generate(noise_image(), PROMPT, on_text=deltas.append)
    assert deltas and ''.join(deltas) == generation.text
    assert generation.text == backend.generate(noise_image(), PROMPT).text


def test_max_new_tokens_per_call(backend):
    generation = backend.generate(noise_image(), PROMPT, max_new_tokens=3)
    assert generation.num_tokens <= 3


def test_cancel_set_before_stops_after_one_token(endless):
    cancel = threading.Event()
    cancel.set()
    generation = endless.generate(noise_image(), PROMPT, cancel=cancel)
    assert generation.finish_reason == 'canceled'
    assert generation.num_tokens == 1


def test_cancel_stops_generation_early(endless):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    start = time.monotonic()
    generation = endless.generate(noise_image(), PROMPT, cancel=cancel)
    assert generation.finish_reason == 'canceled'
    assert 0 < generation.num_tokens < 4000
    assert time.monotonic() - start < 2.0


def test_timeout_raises_with_the_partial_answer(endless):
    start = time.monotonic()
    with pytest.raises(BackendTimeout) as raised:
        endless.generate(noise_image(), PROMPT, timeout_s=0.3)
    assert time.monotonic() - start < 2.0
    assert 0 < raised.value.partial.num_tokens < 4000


def test_on_text_errors_stop_generation(endless):
    def fail(delta):
        raise RuntimeError('consumer failed')

    start = time.monotonic()
    with pytest.raises(RuntimeError, match='consumer failed'):
        endless.generate(noise_image(), PROMPT, on_text=fail)
    assert time.monotonic() - start < 2.0


def test_close_during_generation_raises_canceled():
    loaded = make_backend('transformers', model=str(tiny_model_dir()), max_new_tokens=4000,
                          generation_kwargs={'suppress_tokens': [eos_token_id()]})
    threading.Timer(0.3, loaded.close).start()
    with pytest.raises(BackendCanceled):
        loaded.generate(noise_image(), PROMPT)
    with pytest.raises(BackendError, match='closed'):
        loaded.generate(noise_image(), PROMPT)


def test_bad_image_is_a_value_error(backend):
    with pytest.raises(ValueError, match='HxWx3'):
        backend.generate(noise_image()[:, :, 0], PROMPT)
    with pytest.raises(ValueError, match='uint8'):
        backend.generate(noise_image().astype(float), PROMPT)


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match='model directory not found'):
        make_backend('transformers', model=str(tmp_path / 'absent'))
    with pytest.raises(BackendError, match='cannot load model'):
        make_backend('transformers', model=str(tmp_path))


def test_bad_parameters():
    with pytest.raises(ValueError, match='unknown backend kind'):
        make_backend('onnx')
    with pytest.raises(ValueError, match='dtype'):
        make_backend('transformers', model=str(tiny_model_dir()), dtype='int3')


def test_token_log_probs_spell_the_text(backend):
    generation = backend.generate(noise_image(), PROMPT)
    pairs = generation.token_logprobs
    assert pairs is not None and len(pairs) == generation.num_tokens
    assert ''.join(token for token, _ in pairs) == generation.text
    logprobs = [logprob for _, logprob in pairs]
    assert all(lp <= 0.0 for lp in logprobs) and any(lp < 0.0 for lp in logprobs)


def test_a_model_step_past_the_deadline_is_reported_without_waiting_for_it():
    # A prompt step that does not end by itself (a huge prompt's prefill): generate() must
    # report MODEL_TIMEOUT while it still runs, and keep the model locked until it ends.
    with make_backend('transformers', model=str(tiny_model_dir()), device='cpu',
                      max_new_tokens=4) as loaded:
        real, running, release = loaded._model.generate, threading.Event(), threading.Event()

        def endless_step(**kwargs):
            running.set()
            release.wait(30.0)
            return real(**kwargs)
        loaded._model.generate = endless_step
        threading.Timer(20.0, release.set).start()  # never hang the suite
        try:
            with pytest.raises(BackendTimeout, match='inside one model step'):
                loaded.generate(noise_image(), PROMPT, timeout_s=0.2)
            assert running.is_set() and not release.is_set()  # reported while it runs
            with pytest.raises(BackendTimeout, match='waiting for the model'):
                loaded.generate(noise_image(), PROMPT, timeout_s=0.2)
        finally:
            release.set()
        loaded._model.generate = real
        assert loaded.generate(noise_image(), PROMPT, timeout_s=30.0).num_tokens > 0


def test_special_tokens_and_token_count(backend):
    assert '<image>' in backend.special_tokens
    assert backend.count_tokens('') == 0
    assert backend.count_tokens(PROMPT * 3) > backend.count_tokens(PROMPT) > 0
