"""
Grow a trained LLaVA checkpoint's text decoder deeper without changing what it computes.

Depth up-scaling: every decoder layer is followed by a copy of itself whose two residual
output projections (attention ``o_proj`` and MLP ``down_proj``) start at zero, so each new
layer adds nothing at first and the grown model's logits equal the original's. Training then
uses the extra depth. Usage::

    python -m trace_train.model.grow --model models/trace-tiny --out out/grown --factor 2
"""

import argparse
import copy
import pathlib

import torch
from trace_train.model.tiny_vlm import count_parameters
from transformers import AutoModelForImageTextToText, AutoProcessor


def grow_decoder(model, factor: int = 2):
    """Interleave ``factor - 1`` zero-output copies after each text layer (in place)."""
    if factor < 1:
        raise ValueError(f'factor must be >= 1, got {factor}')
    text = model.model.language_model
    layers = []
    for layer in text.layers:
        layers.append(layer)
        for _ in range(factor - 1):
            twin = copy.deepcopy(layer)
            torch.nn.init.zeros_(twin.self_attn.o_proj.weight)
            torch.nn.init.zeros_(twin.mlp.down_proj.weight)
            layers.append(twin)
    for index, layer in enumerate(layers):
        layer.self_attn.layer_idx = index  # the KV cache is indexed by it
    text.layers = torch.nn.ModuleList(layers)
    config = model.config.text_config
    config.num_hidden_layers = len(layers)
    if getattr(config, 'layer_types', None):
        config.layer_types = [kind for kind in config.layer_types for _ in range(factor)]
    return model


def main(argv=None) -> pathlib.Path:
    """Command line: load ``--model``, grow it, save it (with its processor) to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--model', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--factor', type=int, default=2, help='layers per original layer')
    args = parser.parse_args(argv)
    model = AutoModelForImageTextToText.from_pretrained(args.model)
    before = model.config.text_config.num_hidden_layers
    grow_decoder(model, args.factor)
    model.save_pretrained(args.out)
    AutoProcessor.from_pretrained(args.model).save_pretrained(args.out)
    print(f'{args.out}: text decoder {before} -> {model.config.text_config.num_hidden_layers} '
          f'layers, {count_parameters(model):,} parameters')
    return pathlib.Path(args.out)


if __name__ == '__main__':
    main()
