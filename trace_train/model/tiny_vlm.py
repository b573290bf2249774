"""
Build a tiny LLaVA-architecture VLM from a config, fully offline.

The model is a stock ``LlavaForConditionalGeneration`` (a small CLIP vision tower, whose absolute
position embeddings let patch features carry where they are, and a small Qwen2 decoder) with its
own byte-level BPE tokenizer and a ``LlavaProcessor``. Saved with ``save_pretrained`` it reloads
through ``AutoProcessor`` and ``AutoModelForImageTextToText``, like any hub checkpoint.
"""

import argparse
import dataclasses
import json
import pathlib
from typing import Iterable

from tokenizers import decoders, models, normalizers, pre_tokenizers, Regex, Tokenizer, trainers
import torch
from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, GenerationConfig, LlavaConfig,
                          LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast,
                          Qwen2Config)

IMAGE_TOKEN = '<image>'
PAD_TOKEN = '<|endoftext|>'
BOS_TOKEN = '<|im_start|>'
EOS_TOKEN = '<|im_end|>'
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN]

# Qwen2's pre-tokenizer split: one token per digit, so coordinates tokenize uniformly.
_SPLIT_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
                r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

# ChatML with typed content parts; an image part becomes one <image> placeholder, which the
# processor expands to one token per vision patch.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    '{% endfor %}{% endif %}<|im_end|>\n{% endfor %}'
    '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}'
)


@dataclasses.dataclass
class TinyVlmConfig:
    """Sizes of the tiny VLM; the defaults give ~4M parameters."""

    image_size: int = 224
    patch_size: int = 28
    vision_hidden_size: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_intermediate_size: int = 512
    text_hidden_size: int = 192
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate_size: int = 768
    vocab_size: int = 1024
    max_position_embeddings: int = 2048
    seed: int = 0

    @property
    def num_image_tokens(self) -> int:
        """Image placeholder tokens per image: one per patch (the CLS token is dropped)."""
        return (self.image_size // self.patch_size) ** 2


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (digits split one per token) with ChatML special tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT_REGEX), behavior='isolated'),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
        extra_special_tokens={'image_token': IMAGE_TOKEN}, chat_template=CHAT_TEMPLATE,
        padding_side='left', model_max_length=2048)


def extend_tokenizer(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], vocab_size: int,
                     keep: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """
    Add BPE merges learned on ``texts`` after ``tokenizer``'s own, up to ``vocab_size`` tokens.

    Existing token ids keep their places, so a trained model keeps its vocabulary once its
    embeddings are resized (``resize_token_embeddings``). Merges that would join two adjacent
    tokens of the ``keep`` texts are left out, so those texts tokenize exactly as before.
    """
    backend = tokenizer.backend_tokenizer
    kept_pairs = set()
    for text in keep:
        for piece, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(
                text)):
            tokens = [t.value for t in backend.model.tokenize(piece)]
            kept_pairs.update(zip(tokens, tokens[1:]))
    state = json.loads(backend.to_str())
    vocab, merges = state['model']['vocab'], state['model']['merges']
    known = {tuple(m) for m in merges} | kept_pairs
    learned = json.loads(train_tokenizer(texts, vocab_size).backend_tokenizer.to_str())['model']
    for left, right in learned['merges']:
        if len(vocab) >= vocab_size:
            break
        if (left, right) not in known and left in vocab and right in vocab:
            merges.append([left, right])
            known.add((left, right))
            vocab.setdefault(left + right, len(vocab))
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)), bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
        extra_special_tokens={'image_token': IMAGE_TOKEN}, chat_template=CHAT_TEMPLATE,
        padding_side='left', model_max_length=2048)


def build_processor(tokenizer: PreTrainedTokenizerFast, config: TinyVlmConfig) -> LlavaProcessor:
    """
    Pair the tokenizer with a PIL-only CLIP image processor (no torchvision needed).

    Images are resized to a square without cropping, so normalized coordinates of the processed
    image are those of the input image edge to edge, whatever its aspect ratio.
    """
    side = config.image_size
    image_processor = CLIPImageProcessorPil(
        size={'height': side, 'width': side}, crop_size={'height': side, 'width': side},
        do_center_crop=False)
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=config.patch_size,
        vision_feature_select_strategy='default', num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE)


def build_model(tokenizer: PreTrainedTokenizerFast,
                config: TinyVlmConfig) -> LlavaForConditionalGeneration:
    """Randomly initialize a LLaVA model sized by ``config`` for ``tokenizer``'s vocabulary."""
    vision = CLIPVisionConfig(
        image_size=config.image_size, patch_size=config.patch_size,
        hidden_size=config.vision_hidden_size, num_hidden_layers=config.vision_layers,
        num_attention_heads=config.vision_heads,
        intermediate_size=config.vision_intermediate_size, projection_dim=config.text_hidden_size)
    text = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=config.text_hidden_size,
        num_hidden_layers=config.text_layers, num_attention_heads=config.text_heads,
        num_key_value_heads=config.text_kv_heads,
        intermediate_size=config.text_intermediate_size,
        max_position_embeddings=config.max_position_embeddings, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    llava = LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=config.num_image_tokens, vision_feature_select_strategy='default',
        vision_feature_layer=-1, tie_word_embeddings=False)
    torch.manual_seed(config.seed)
    model = LlavaForConditionalGeneration(llava).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=256)
    return model


def build_tiny_vlm(out_dir: str | pathlib.Path, texts: Iterable[str],
                   config: TinyVlmConfig | None = None) -> pathlib.Path:
    """
    Train the tokenizer on ``texts``, build the model and processor, and save all to ``out_dir``.

    The directory then holds a checkpoint that ``AutoProcessor.from_pretrained`` and
    ``AutoModelForImageTextToText.from_pretrained`` load; its ``config.json`` records the sizes.
    """
    config = config or TinyVlmConfig()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, config.vocab_size)
    processor = build_processor(tokenizer, config)
    model = build_model(tokenizer, config)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


# A tiny LLaVA that vLLM's CPU build serves: its attention takes head sizes 32, 64, 80, ...,
# not the 48 of the default decoder (192 / 4 heads), so this one has 2 heads of 64.
SERVABLE_CONFIG = TinyVlmConfig(text_hidden_size=128, text_heads=2, text_kv_heads=1,
                                text_intermediate_size=256, vocab_size=400)


def build_servable_tiny_llava(out_dir: str | pathlib.Path, texts: Iterable[str]) -> pathlib.Path:
    """
    Build a tiny LLaVA that vLLM (CPU) serves, in the hub's layout, into ``out_dir``.

    The decoder has head size 64 (``SERVABLE_CONFIG``) and the CLIP tower's weights are saved
    as ``vision_tower.vision_model.*``, as hub LLaVA checkpoints are: vLLM loads that layout,
    transformers 5.2x saves the tower without ``vision_model.`` and loads both.
    """
    from safetensors.torch import load_file, save_file
    out = build_tiny_vlm(out_dir, texts, dataclasses.replace(SERVABLE_CONFIG))
    weights = out / 'model.safetensors'
    tensors = load_file(weights)
    tower = 'vision_tower.'
    save_file({(tower + 'vision_model.' + key[len(tower):] if key.startswith(tower) else key):
               value for key, value in tensors.items()}, weights, metadata={'format': 'pt'})
    return out


def count_parameters(model: torch.nn.Module) -> int:
    """Return the number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    """Build a tiny VLM into a directory from a text file (one training text per line)."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', required=True, help='output model directory')
    parser.add_argument('--texts', required=True, help='text file, one tokenizer text per line')
    for field in dataclasses.fields(TinyVlmConfig):
        parser.add_argument('--' + field.name.replace('_', '-'), type=int, default=field.default)
    args = parser.parse_args(argv)
    config = TinyVlmConfig(**{f.name: getattr(args, f.name)
                              for f in dataclasses.fields(TinyVlmConfig)})
    texts = pathlib.Path(args.texts).read_text().splitlines()
    print(build_tiny_vlm(args.out, texts, config))


if __name__ == '__main__':
    main()
