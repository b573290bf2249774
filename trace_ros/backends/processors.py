"""
Load a model's processor, with an image-only fallback for Qwen-VL processors without torchvision.

In transformers 5.x the Qwen2-VL / Qwen2.5-VL / Qwen3-VL processors always build a video
processor, which needs torchvision. When AutoProcessor fails for that reason, the same processor
class is built without it: the PIL image processor (``Qwen2VLImageProcessorPil``), the tokenizer
and the chat template, so images still work and only video inputs are unavailable.
"""

import json
import pathlib

from transformers import AutoProcessor, AutoTokenizer

QWEN_IMAGE_ONLY = ('qwen2_vl', 'qwen2_5_vl', 'qwen3_vl', 'qwen3_vl_moe')


def _processor_class(model_type: str):
    """Return the stock processor class of a Qwen-VL model type."""
    if model_type == 'qwen2_vl':
        from transformers import Qwen2VLProcessor
        return Qwen2VLProcessor
    if model_type == 'qwen2_5_vl':
        from transformers import Qwen2_5_VLProcessor
        return Qwen2_5_VLProcessor
    from transformers import Qwen3VLProcessor
    return Qwen3VLProcessor


def image_only_processor_class(model_type: str):
    """Return the model type's processor class without its video processor part."""
    base = _processor_class(model_type)

    class ImageOnlyProcessor(base):
        """The stock processor without a video processor (no torchvision needed)."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template,
                             **kwargs)

    ImageOnlyProcessor.__name__ = f'ImageOnly{base.__name__}'
    return ImageOnlyProcessor


def _chat_template(source: pathlib.Path, tokenizer):
    """Return the processor's chat template (chat_template.jinja/.json) or the tokenizer's."""
    if (source / 'chat_template.jinja').is_file():
        return (source / 'chat_template.jinja').read_text(encoding='utf-8')
    if (source / 'chat_template.json').is_file():
        return json.loads((source / 'chat_template.json').read_text())['chat_template']
    return getattr(tokenizer, 'chat_template', None)


def load_image_only(source: str, model_type: str, trust_remote_code: bool = False):
    """Build a Qwen-VL processor for ``source`` from its PIL image processor and tokenizer."""
    from transformers import Qwen2VLImageProcessorPil
    directory = pathlib.Path(source)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    return image_only_processor_class(model_type)(
        image_processor, tokenizer, chat_template=_chat_template(directory, tokenizer))


def _model_type(source: str) -> str:
    try:
        return json.loads((pathlib.Path(source) / 'config.json').read_text()).get(
            'model_type', '')
    except (OSError, ValueError, AttributeError):
        return ''


def load_processor(source: str, trust_remote_code: bool = False):
    """Return AutoProcessor's processor, or an image-only Qwen-VL one without torchvision."""
    try:
        return AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code)
    except ImportError as exc:
        model_type = _model_type(source)
        if 'torchvision' not in str(exc).lower() or model_type not in QWEN_IMAGE_ONLY:
            raise
        return load_image_only(source, model_type, trust_remote_code)
