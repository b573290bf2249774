"""
Which parts of a vision-language model train: freezing, LoRA, and saving the result.

Module names of vision towers and of the projectors that feed the decoder cover LLaVA,
Qwen-VL and Idefics; the projector is trained in full unless frozen.
"""

import pathlib

from peft import get_peft_model, LoraConfig
import torch
from trace_train.train.config import TraceTrainingConfig
from transformers import AutoModelForImageTextToText, Trainer

VISION_TOWERS = ('vision_tower', 'visual', 'vision_model')
PROJECTORS = ('multi_modal_projector', 'merger', 'connector')


def module_names(model: torch.nn.Module, candidates: tuple) -> list[str]:
    """Return the ``candidates`` that name a submodule of ``model``."""
    parts = {part for name, _ in model.named_modules() for part in name.split('.')}
    return [name for name in candidates if name in parts]


def freeze_image_path(model: torch.nn.Module, projector: bool = False) -> None:
    """Freeze the vision tower's parameters, and with ``projector`` the projector's too."""
    for name, parameter in model.named_parameters():
        parts = set(name.split('.'))
        if parts & set(PROJECTORS):
            parameter.requires_grad = not projector
        elif parts & set(VISION_TOWERS):
            parameter.requires_grad = False


def add_lora(model: torch.nn.Module, args: TraceTrainingConfig) -> torch.nn.Module:
    """
    Wrap ``model`` with LoRA on the decoder (and the tower if not frozen).

    The projector trains in full unless ``freeze_projector``.
    """
    projectors = module_names(model, PROJECTORS)
    excluded = projectors + (module_names(model, VISION_TOWERS) if args.freeze_vision else [])
    targets = args.lora_targets
    config = LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=targets if targets == 'all-linear' else targets.split(','),
        exclude_modules=rf'(.*\.)?({"|".join(excluded)})(\..*)?' if excluded else None,
        modules_to_save=None if args.freeze_projector else projectors or None)
    return get_peft_model(model, config)


def load_model(args: TraceTrainingConfig) -> torch.nn.Module:
    """
    Load the base model and make the parts ``method`` trains trainable.

    With ``reference_attention`` the model uses eager attention, the implementation that
    returns attention weights; ``save_models`` saves it back with the default one.
    """
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=dtype)
    if args.reference_attention > 0:
        model.set_attn_implementation('eager')
    if args.freeze_vision:
        freeze_image_path(model, args.freeze_projector)
    return add_lora(model, args) if args.method == 'lora' else model


def parameter_counts(model: torch.nn.Module) -> dict:
    """Return the numbers of parameters and of trainable parameters."""
    return {'parameters': sum(p.numel() for p in model.parameters()),
            'trainable_parameters': sum(p.numel() for p in model.parameters() if p.requires_grad)}


def save_models(trainer: Trainer, processor, args: TraceTrainingConfig) -> None:
    """
    Save ``output_dir/final`` (LoRA: merged, the adapter in ``adapter/``), with the processor.

    The saved model is stock: it loads with ``AutoModelForImageTextToText`` and sdpa attention.
    """
    out = pathlib.Path(args.output_dir)
    if args.reference_attention > 0:
        trainer.model.set_attn_implementation('sdpa')
    if args.method == 'full':
        trainer.save_model(str(out / 'final'))
        return
    trainer.save_model(str(out / 'adapter'))
    if trainer.is_world_process_zero():
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(out / 'final')
        processor.save_pretrained(out / 'final')
