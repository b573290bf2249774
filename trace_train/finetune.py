"""
Fine-tune an image-text-to-text model on TRACE LLaVA-format data with the transformers Trainer.

``python -m trace_train.finetune --config recipes/X.yaml [--option value ...]`` (or every option
on the command line: ``--model DIR --data DATA --output_dir OUT``). The options are those of
``TraceTrainingConfig``: every ``TrainingArguments`` option plus the CoR fraction, LoRA or full
fine-tuning, the coordinate L1 and the reference attention. It writes Trainer checkpoints and
TensorBoard logs to the output folder, then ``final/`` (a stock checkpoint + processor; merged
for LoRA, whose adapter goes to ``adapter/``) and ``train_summary.json``. See docs/TRAINING.md.
"""

import json
import pathlib

import torch
from trace_train.train.collator import ChatCollator
from trace_train.train.config import TraceTrainingConfig
from trace_train.train.modules import load_model, parameter_counts, save_models
from trace_train.train.recipe import parse_recipe
from trace_train.train.samples import load_samples
from trace_train.train.trainer import TraceTrainer
from transformers import AutoProcessor, set_seed
from transformers.trainer_utils import get_last_checkpoint


def train(config: TraceTrainingConfig) -> dict:
    """Fine-tune as ``config`` says; return (and write) the training summary."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)  # before the model: LoRA's initialization draws from it
    out = pathlib.Path(config.output_dir)
    processor = AutoProcessor.from_pretrained(config.model)
    samples = load_samples(config.data, config.cor_fraction, config.seed, config.max_samples)
    radius = config.reference_radius if config.reference_attention > 0 else None
    model = load_model(config)
    parameters = parameter_counts(model)
    trainer = TraceTrainer(model=model, args=config, train_dataset=samples,
                           data_collator=ChatCollator(processor, radius),
                           processing_class=processor)
    checkpoint = get_last_checkpoint(str(out)) if config.resume and out.is_dir() else None
    metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
    save_models(trainer, processor, config)
    losses = [entry['loss'] for entry in trainer.state.log_history if 'loss' in entry]
    summary = {
        'args': config.to_dict(), 'samples': len(samples),
        'cor_samples': sum(s['cor'] for s in samples), 'resumed_from': checkpoint, **parameters,
        'steps': trainer.state.global_step, 'planned_steps': trainer.state.max_steps,
        'epochs': trainer.state.epoch, 'train_time_s': metrics['train_runtime'],
        'samples_per_second': metrics['train_samples_per_second'],
        'steps_per_second': metrics['train_steps_per_second'],
        'first_loss': losses[0] if losses else None, 'last_loss': losses[-1] if losses else None,
        'losses': losses, 'final': str(out / 'final')}
    if trainer.is_world_process_zero():
        (out / 'train_summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    return summary


def main(argv: list[str] | None = None) -> dict:
    """Read the recipe and the command line, then fine-tune."""
    return train(parse_recipe(TraceTrainingConfig, argv, __doc__.strip().splitlines()[0]))


if __name__ == '__main__':
    main()
