"""Depth up-scaling of a real (config-built) tiny LLaVA: same outputs, more trainable depth."""

import pytest
import torch

transformers = pytest.importorskip('transformers')

from tiny_model import noise_image, tiny_model_dir  # noqa: E402, I100
from trace_train.model import grow  # noqa: E402


def _inputs(processor):
    prompt = processor.apply_chat_template(
        [{'role': 'user', 'content': [{'type': 'image'},
                                      {'type': 'text', 'text': 'Put the bowl left of the box.'}]}],
        add_generation_prompt=True)
    return processor(text=[prompt], images=[noise_image()], return_tensors='pt')


def test_grown_model_answers_as_before_and_its_new_layers_learn(tmp_path):
    source = tiny_model_dir()
    out = grow.main(['--model', str(source), '--out', str(tmp_path / 'grown'), '--factor', '2'])
    original = transformers.AutoModelForImageTextToText.from_pretrained(source).eval()
    grown = transformers.AutoModelForImageTextToText.from_pretrained(out).eval()
    layers = original.config.text_config.num_hidden_layers
    assert grown.config.text_config.num_hidden_layers == 2 * layers
    assert len(grown.config.text_config.layer_types) == 2 * layers
    inputs = _inputs(transformers.AutoProcessor.from_pretrained(out))
    with torch.no_grad():
        assert torch.allclose(original(**inputs).logits, grown(**inputs).logits, atol=1e-5)
        kwargs = {'max_new_tokens': 12, 'do_sample': False}
        assert torch.equal(original.generate(**inputs, **kwargs),
                           grown.generate(**inputs, **kwargs))
    # The zero-initialised projections of a new layer receive gradient.
    grown.train()
    labels = inputs['input_ids'].clone()
    grown(**inputs, labels=labels).loss.backward()
    twin = grown.model.language_model.layers[1]
    assert float(twin.self_attn.o_proj.weight.abs().sum()) == 0.0
    assert float(twin.mlp.down_proj.weight.grad.abs().sum()) > 0.0


def test_factor_must_be_positive():
    with pytest.raises(ValueError):
        grow.grow_decoder(object(), factor=0)
