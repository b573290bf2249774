"""The fine-tuning configuration: ``transformers.TrainingArguments`` plus the project's fields."""

import dataclasses
from typing import Any, Literal

import torch
from transformers import TrainingArguments
from transformers.trainer_utils import SchedulerType


def option(default, doc: str, **metadata):
    """Return a dataclass field with a default and a help text."""
    return dataclasses.field(default=default, metadata={'help': doc, **metadata})


@dataclasses.dataclass
class TraceTrainingConfig(TrainingArguments):
    """
    Every Trainer option, the project's defaults, and what to train on and how.

    A recipe (``recipes/*.yaml``) sets these fields by name; see docs/TRAINING.md.
    """

    model: str | None = option(None, 'base model directory or hub id (required)')
    data: list[str] | None = option(
        None, 'TRACE data folders (llava_cor.json, llava_plain.json, images/) (required)')
    method: Literal['lora', 'full'] = option('lora', 'LoRA adapters or full fine-tuning')
    lora_r: int = option(128, 'LoRA rank')
    lora_alpha: int = option(256, 'LoRA alpha')
    lora_dropout: float = option(0.05, 'LoRA dropout')
    lora_targets: str = option('all-linear', "'all-linear' or comma-separated module names")
    cor_fraction: float = option(
        1.0, 'probability (seeded, per sample id) of the CoR answer instead of the plain one')
    coord_l1: float = option(
        0.0, 'weight of the L1 loss on the expected answer coordinates (0: logged only)')
    reference_attention: float = option(
        0.0, 'weight of the attention supervision that points the tokens of the reference '
        "point (and of the target area's centre, if given) at the image patches around it "
        '(0: off)')
    reference_radius: float = option(
        0.08, 'radius (normalized image units) of the supervised patches around the point')
    freeze_vision: bool = option(True, 'keep the vision tower frozen (the projector trains)')
    freeze_projector: bool = option(
        False, 'keep the multimodal projector frozen too (the image features stay as the base '
        "model's, so what the decoder learned to read from them is kept)")
    max_samples: int | None = option(None, 'train on this many samples (seeded choice)')
    threads: int = option(0, 'torch CPU threads (0: torch default)')
    resume: bool = option(False, 'resume from the newest checkpoint in output_dir')

    # Trainer options whose defaults differ from transformers' (TRACE's recipe: cosine, 3 %).
    learning_rate: float = option(2e-5, 'peak learning rate')
    num_train_epochs: float = option(1.0, 'passes over the data (max_steps > 0 overrides it)')
    lr_scheduler_type: SchedulerType | str = option('cosine', 'learning rate schedule')
    warmup_steps: float = option(0.03, 'warm-up steps, or below 1 the share of all steps')
    seed: int = option(0, 'seed of the sample choice, the LoRA init and the Trainer')
    logging_steps: float = option(10, 'log every N steps')
    logging_first_step: bool = option(True, 'log the first step too')
    save_total_limit: int | None = option(2, 'checkpoints kept')
    report_to: None | str | list[str] = option(
        'tensorboard', "'tensorboard' (logs in output_dir/runs), 'none', or another integration")
    remove_unused_columns: bool = option(False, 'the collator reads the raw samples')
    label_names: list[str] | None = dataclasses.field(
        default_factory=lambda: ['labels'], metadata={'help': 'the label keys of a batch'})
    activation_checkpointing_kwargs: dict[str, Any] | str | None = dataclasses.field(
        default_factory=lambda: {'use_reentrant': False},
        metadata={'help': 'options of activation (gradient) checkpointing'})

    def __post_init__(self):
        """Check the project's fields, then let ``TrainingArguments`` check the rest."""
        if not self.model or not self.data:
            raise ValueError('model and data are required (in the recipe or on the command line)')
        if not 0.0 <= self.cor_fraction <= 1.0:
            raise ValueError('cor_fraction must be in [0, 1]')
        if self.method == 'lora' and self.lora_r < 1:
            raise ValueError('method lora needs lora_r >= 1')
        if self.freeze_projector and not self.freeze_vision:
            raise ValueError('freeze_projector needs the vision tower frozen too')
        cuda = torch.cuda.is_available()
        self.use_cpu = self.use_cpu or (self.bf16 and not cuda)  # bf16 on a CPU is asked for
        self.dataloader_pin_memory = self.dataloader_pin_memory and cuda
        super().__post_init__()
