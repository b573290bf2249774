"""Structured decoding: the reply grammar as a token mask, in process and through a server."""

import http.client
import json

import pytest
from tiny_model import noise_image, tiny_model_dir
import torch
from trace_ros.backends import BackendError, make_backend
from trace_ros.backends.constrained import RegexConstraint
from trace_ros.backends.openai_client import encode_image
from trace_ros.backends.openai_server import ChatCompletionsHandler, OpenAIServer
from trace_ros.core.answer_format import (format_cor_answer, matches_grammar, reply_max_chars,
                                          reply_regex)
from transformers import AutoTokenizer, Qwen2Tokenizer

PROMPT = 'Place the red cup to the left of the plate.'
PLAIN = reply_regex('plain', max_points=2)
COR = reply_regex('cor', max_points=2, max_step_chars=24)
# Every token carries at least one byte (special tokens are masked) and COR is ASCII, so a
# constrained reply ends within its longest match's length, plus the end token.
COR_BUDGET = reply_max_chars('cor', max_points=2, max_step_chars=24) + 1
REPLY = format_cor_answer('object reference', 'the red mug', 'left of it', [(0.31, 0.56)],
                          reference_point=(0.42, 0.55), target_box=(0.2, 0.5, 0.38, 0.62))


def qwen2_tokenizer():
    """Build a Qwen2 tokenizer from a tiny vocabulary: bytes, a few merges, ChatML tokens."""
    from tokenizers.pre_tokenizers import ByteLevel
    vocab = {char: index for index, char in enumerate(sorted(ByteLevel.alphabet()))}
    merges = [('Ġ', 't'), ('e', 'r'), ('Ġt', 'h'), ('0', '.')]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None,
                               eos_token='<|im_end|>', pad_token='<|endoftext|>')
    tokenizer.add_special_tokens({'additional_special_tokens': ['<|im_start|>']})
    return tokenizer


def trace_tiny_tokenizer():
    return AutoTokenizer.from_pretrained('models/trace-tiny')


@pytest.mark.parametrize('make_tokenizer, padding, speculate', [
    (trace_tiny_tokenizer, 0, False), (qwen2_tokenizer, 61, False),
    (trace_tiny_tokenizer, 0, True)])  # the masked argmax is mostly not the next token here
def test_mask_follows_the_reply_and_allows_the_end_only_when_whole(make_tokenizer, padding,
                                                                   speculate):
    tokenizer = make_tokenizer()
    vocab_size = len(tokenizer) + padding  # logits rows past the tokenizer are never allowed
    constraint = RegexConstraint(tokenizer, vocab_size, {tokenizer.eos_token_id})
    processor = constraint.processor(reply_regex('cor'), speculate)
    ids = tokenizer(REPLY, add_special_tokens=False)['input_ids']
    sequence = [tokenizer.eos_token_id]  # stands for the prompt
    for step, token in enumerate(ids + [tokenizer.eos_token_id]):
        allowed = torch.isfinite(processor(torch.tensor([sequence]),
                                           torch.zeros(1, vocab_size)))[0]
        assert allowed[token], (step, tokenizer.decode([token]))
        assert bool(allowed[tokenizer.eos_token_id]) == (step == len(ids)), step
        assert not allowed[len(tokenizer):].any()
        sequence.append(token)
    assert allowed.sum() == 1  # after the closing bracket only the end
    first = torch.isfinite(constraint.processor(reply_regex('cor'))(
        torch.tensor([[0]]), torch.zeros(1, vocab_size)))[0]
    assert {tokenizer.decode([t])[:1] for t in first.nonzero()[:, 0].tolist()} == {'1'}
    assert constraint.compiled == 1  # the second processor reused the compiled regex


def test_a_regex_that_does_not_compile_is_a_value_error():
    constraint = RegexConstraint(trace_tiny_tokenizer(), 680, {2})
    with pytest.raises(ValueError, match='does not compile'):
        constraint.processor('[(0.5')


@pytest.fixture(scope='module')
def random_model():
    """Load the random tiny model: free decoding gives gibberish."""
    with make_backend('transformers', model=str(tiny_model_dir()), max_new_tokens=40) as loaded:
        yield loaded


def test_gibberish_model_writes_the_grammar_when_constrained(random_model):
    free = random_model.generate(noise_image(), PROMPT)
    assert not matches_grammar(free.text, 'plain', max_points=2)
    for style, regex, budget in (('plain', PLAIN, 40), ('cor', COR, COR_BUDGET)):
        deltas = []
        generation = random_model.generate(noise_image(), PROMPT, on_text=deltas.append,
                                           regex=regex, max_new_tokens=budget)
        assert generation.finish_reason == 'stop', generation
        assert matches_grammar(generation.text, style, max_points=2), generation.text
        assert ''.join(deltas) == generation.text
    assert random_model._constraint.compiled == 2
    random_model.generate(noise_image(), PROMPT, regex=PLAIN)
    assert random_model._constraint.compiled == 2  # compiled once per regex


def test_token_limit_cuts_a_constrained_reply_and_says_so(random_model):
    generation = random_model.generate(noise_image(), PROMPT, regex=COR, max_new_tokens=10)
    assert generation.finish_reason == 'length' and generation.num_tokens == 10
    assert not matches_grammar(generation.text, 'cor', max_points=2)
    assert any(f'1. Goal subtype: {subtype}.\n2. Reference: '.startswith(generation.text)
               for subtype in ('free space', 'object reference')), generation.text


def test_backend_setting_constrains_every_reply_and_attention_replies():
    with make_backend('transformers', model=str(tiny_model_dir()), max_new_tokens=40,
                      reply_regex=PLAIN) as backend:
        text = backend.generate(noise_image(), PROMPT).text
        assert matches_grammar(text, 'plain', max_points=2), text
        assert backend.attention_maps(noise_image(), PROMPT).text == text
        free = backend.generate(noise_image(), PROMPT, regex='')  # '' decodes freely
        assert not matches_grammar(free.text, 'plain', max_points=2)


class BodyRecorder(ChatCompletionsHandler):
    """Keeps the JSON body of every request."""

    def _read_json(self):
        body = super()._read_json()
        self.server.bodies.append(body)
        return body


@pytest.fixture
def server(random_model):
    served = OpenAIServer(random_model, handler=BodyRecorder)
    served.bodies = []
    served.start()
    yield served
    served.shutdown()
    served.server_close()


@pytest.mark.parametrize('field, stream', [('vllm', True), ('vllm', False), ('sglang', True)])
def test_client_sends_the_grammar_and_our_server_applies_it(server, field, stream):
    client = make_backend('openai', base_url=server.url, model='', stream=stream,
                          max_new_tokens=40, reply_regex=PLAIN, structured_output_field=field)
    generation = client.generate(noise_image(), PROMPT)
    assert matches_grammar(generation.text, 'plain', max_points=2), generation.text
    assert generation.finish_reason == 'stop'
    sent = server.bodies[-1]
    if field == 'vllm':
        assert sent['structured_outputs'] == {'regex': PLAIN} and 'regex' not in sent
    else:
        assert sent['regex'] == PLAIN and 'structured_outputs' not in sent


def test_field_none_sends_nothing(server):
    client = make_backend('openai', base_url=server.url, model='', max_new_tokens=40,
                          reply_regex=PLAIN, structured_output_field='none')
    generation = client.generate(noise_image(), PROMPT)
    assert not matches_grammar(generation.text, 'plain', max_points=2)
    assert not {'regex', 'structured_outputs', 'guided_regex'} & set(server.bodies[-1])


@pytest.mark.parametrize('fields, words', [
    ({'structured_outputs': {'json': {'type': 'object'}}}, 'json is not supported'),
    ({'structured_outputs': {'regex': '[(0.5'}}, 'does not compile'),
    ({'regex': PLAIN, 'guided_regex': PLAIN}, 'one non-empty regex'),
])
def test_server_rejects_what_it_cannot_constrain(server, fields, words):
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    body = {'messages': [{'role': 'user', 'content': [
        {'type': 'image_url', 'image_url': {'url': encode_image(noise_image())}},
        {'type': 'text', 'text': PROMPT}]}], 'max_tokens': 8, **fields}
    conn.request('POST', '/v1/chat/completions', json.dumps(body),
                 {'Content-Type': 'application/json'})
    response = conn.getresponse()
    error = json.loads(response.read())['error']
    conn.close()
    assert response.status == 400 and words in error['message'], error


def test_client_reports_a_rejected_grammar(server):
    client = make_backend('openai', base_url=server.url, model='', stream=False,
                          reply_regex='[(0.5', max_retries=2, backoff_s=0.01)
    with pytest.raises(BackendError, match='HTTP 400.*does not compile'):
        client.generate(noise_image(), PROMPT)
    assert len(server.bodies) == 1  # a 400 is not retried


@pytest.mark.parametrize('kind', ['transformers', 'openai'])
def test_node_parameters_choose_the_backend_grammar(kind):
    from trace_ros.ros.params import TraceNodeConfig
    from trace_ros.ros.trace_node import TraceNode
    config = TraceNodeConfig(backend=kind, model=str(tiny_model_dir()), prompt_style='plain',
                             openai_structured_output_field='sglang')
    assert TraceNode._backend_params(config)['reply_regex'] == reply_regex('plain')
    # A family that writes points its own way (e.g. Qwen2.5-VL's point_2d JSON) is not held
    # to TRACE's grammar.
    from trace_ros.core.model_profiles import resolve_profile
    qwen, _ = resolve_profile('qwen2_5_vl')
    assert TraceNode._backend_params(config, qwen)['reply_regex'] is None
    config.structured_decoding = False
    assert TraceNode._backend_params(config)['reply_regex'] is None
    if kind == 'openai':
        assert TraceNode._backend_params(config)['structured_output_field'] == 'sglang'


@pytest.mark.ros
def test_node_default_sends_the_grammar_to_the_server(server, ros_domain_id, tmp_path):
    from ros_harness import Session
    from test_trace_node_backends import params
    from trace_ros.msg import PlacementResult
    session = Session(ros_domain_id, params(
        backend='openai', openai_base_url=server.url, openai_max_retries=0,
        prompt_style='plain', max_new_tokens=300, generation_timeout=20.0, max_frame_age=5.0),
        str(tmp_path))
    try:
        result = session.ask('put the cup somewhere', timeout=60.0)
    finally:
        session.close()
    assert server.bodies[-1]['structured_outputs'] == {'regex': reply_regex('plain')}
    assert matches_grammar(result.reasoning, 'plain'), result.reasoning
    assert result.status != PlacementResult.STATUS_PARSE_ERROR, result.message


@pytest.mark.parametrize('structured', [True, False])
def test_evaluate_cli_switch(structured, tmp_path):
    from trace_train.evaluate import main
    metrics = main(['--data', 'data/eval/sim_w2p', '--model', str(tiny_model_dir()),
                    '--device', 'cpu', '--out', str(tmp_path), '--limit', '2',
                    '--prompt-style', 'plain', '--max-new-tokens', '300',
                    '--structured' if structured else '--no-structured'])
    assert metrics['structured'] == structured
    assert metrics['grammar_rate'] == (1.0 if structured else 0.0)
    assert metrics['parse_failure_rate'] == (0.0 if structured else 1.0)
