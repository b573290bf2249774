"""
Fine-tune an image-text-to-text model on TRACE LLaVA-format data with the transformers Trainer.

``python -m trace_train.finetune --model DIR_OR_HUB_ID --data DATA --out OUT`` trains on the
folders' ``llava_cor.json``/``llava_plain.json`` (``--cor-fraction``: the share of samples that
carry the CoR; the others give the answer only), with the loss on the assistant's reply only,
LoRA (``--method lora``, the projector trained in full) or full fine-tuning, and an optional L1
loss on the answer's coordinates (``--coord-l1``). It writes Trainer checkpoints and TensorBoard
logs (``OUT/runs``) to OUT, then ``OUT/final`` (a stock checkpoint + processor that the node's
transformers backend loads; merged for LoRA, whose adapter goes to ``OUT/adapter``) and
``OUT/train_summary.json``. ``--reference-attention`` keeps the decoder looking at the reference
object while it writes the reference's coordinates (and at the target area while it writes the
area's centre, in CoRs that give one). See docs/TRAINING.md.
"""

import collections
import dataclasses
import json
import pathlib
import random
import time
from typing import Literal

from peft import get_peft_model, LoraConfig
from PIL import Image
import torch
from trace_ros.core.answer_format import (answer_coordinates, assistant_turn, grounded_point_spans,
                                          llava_prompt, user_turn)
from transformers import (AutoModelForImageTextToText, AutoProcessor, HfArgumentParser, Trainer,
                          TrainerCallback, TrainingArguments)
from transformers.trainer_utils import get_last_checkpoint

# Module names of vision towers and of the projectors that feed the decoder (LLaVA, Qwen-VL,
# Idefics); the projector is always trained in full.
VISION_TOWERS = ('vision_tower', 'visual', 'vision_model')
PROJECTORS = ('multi_modal_projector', 'merger', 'connector')
COORD_KEYS = ('coord_batch', 'coord_position', 'coord_place', 'coord_number', 'coord_target')
REFERENCE_KEYS = ('reference_batch', 'reference_position', 'reference_target')


def option(default, doc: str, **metadata):
    """Return a dataclass field with a default and a help text."""
    return dataclasses.field(default=default, metadata={'help': doc, **metadata})


@dataclasses.dataclass
class FinetuneArgs:
    """Command-line options; ``--lora-r`` and ``--lora_r`` are the same option."""

    model: str = dataclasses.field(metadata={'help': 'base model directory or hub id'})
    data: list[str] = dataclasses.field(metadata={
        'help': 'TRACE data folders (llava_cor.json, llava_plain.json, images/)',
        'action': 'extend'})
    out: str = dataclasses.field(metadata={'help': 'output folder'})
    method: Literal['lora', 'full'] = option('lora', 'LoRA adapters or full fine-tuning')
    lora_r: int = option(128, 'LoRA rank')
    lora_alpha: int = option(256, 'LoRA alpha')
    lora_dropout: float = option(0.05, 'LoRA dropout')
    lora_targets: str = option('all-linear', "'all-linear' or comma-separated module names")
    learning_rate: float = option(2e-5, 'peak learning rate')
    epochs: float = option(1.0, 'passes over the data')
    max_steps: int = option(-1, 'optimizer steps; > 0 overrides --epochs')
    batch_size: int = option(1, 'samples per device and step')
    grad_accum: int = option(1, 'gradient accumulation steps')
    warmup_ratio: float = option(0.03, 'share of the steps with a linear warmup')
    scheduler: str = option('cosine', 'learning rate schedule (transformers SchedulerType)')
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
    seed: int = option(0, 'seed of the sample choice and of the Trainer')
    threads: int = option(0, 'torch CPU threads (0: torch default)')
    bf16: bool = option(False, 'load the weights in bfloat16 and train with bfloat16 autocast')
    gradient_checkpointing: bool = option(False, 'recompute activations to save memory')
    logging_steps: int = option(10, 'log every N steps')
    save_steps: int = option(500, 'save a checkpoint every N steps')
    save_total_limit: int = option(2, 'checkpoints kept')
    workers: int = option(0, 'data loader processes')
    resume: bool = option(False, 'resume from the newest checkpoint in --out')
    report_to: str = option(
        'tensorboard', "'tensorboard' (logs in OUT/runs), 'none', or another Trainer integration")
    max_minutes: float | None = option(None, 'stop (and save a checkpoint) after this wall time')
    deepspeed: str | None = option(None, 'DeepSpeed config, e.g. config/deepspeed/zero2.json')


def load_samples(folders: list[str], cor_fraction: float, seed: int = 0,
                 max_samples: int | None = None) -> list[dict]:
    """
    Read the folders' conversations and pick the CoR or the plain version of each sample.

    The choice depends only on (seed, sample id), and ``max_samples`` picks the same samples at
    any fraction, so runs at different fractions train on the same data budget.
    """
    samples = []
    for folder in map(pathlib.Path, folders):
        cor = json.loads((folder / 'llava_cor.json').read_text())
        plain = {row['id']: row for row in json.loads((folder / 'llava_plain.json').read_text())}
        if {row['id'] for row in cor} != set(plain):
            raise ValueError(f'{folder}: llava_cor.json and llava_plain.json hold other ids')
        for row in cor:
            use_cor = random.Random(f'{seed}/{row["id"]}').random() < cor_fraction
            human, gpt = (row if use_cor else plain[row['id']])['conversations'][:2]
            samples.append({'id': row['id'], 'image': str(folder / row['image']), 'cor': use_cor,
                            'prompt': llava_prompt(human['value']),
                            'answer': gpt['value']})
    if max_samples is not None and max_samples < len(samples):
        keep = sorted(random.Random(seed).sample(range(len(samples)), max_samples))
        samples = [samples[i] for i in keep]
    return samples


def digit_token_ids(tokenizer) -> list[int] | None:
    """Return the token ids of '0'..'9', or None when a digit is not a single token."""
    ids = [tokenizer(str(d), add_special_tokens=False)['input_ids'] for d in range(10)]
    return [i[0] for i in ids] if all(len(i) == 1 for i in ids) else None


def answer_digits(reply: str, offsets: list) -> tuple[list, list]:
    """
    Locate the coordinate digits of the reply's final ``[...]`` list.

    Returns ``(token index in the reply, decimal place, number index)`` per digit after ``0.``
    and the numbers' values; numbers whose digits are not one token each are left out.
    """
    single = {start: i for i, (start, end) in enumerate(offsets) if end == start + 1}
    digits, values = [], []
    for (first, last), value in answer_coordinates(reply):
        starts = range(first, last)
        if all(s in single for s in starts):
            digits += [(single[s], place, len(values)) for place, s in enumerate(starts, 1)]
            values.append(value)
    return digits, values


def rgb_image(image) -> Image.Image:
    """Return ``image`` (a PIL image or a path) as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    with Image.open(image) as opened:
        return opened.convert('RGB')


class ChatCollator:
    """
    Encode (image, prompt, answer) samples with the processor's chat template into a batch.

    Labels are -100 except on the assistant reply and its end-of-turn token; sequences are
    padded on the right. With a digit-per-token tokenizer the batch also says where the
    answer's coordinate digits are (``COORD_KEYS``) for the coordinate L1 loss.
    """

    def __init__(self, processor, reference_radius: float | None = None):
        self.processor = processor
        self.tokenizer = getattr(processor, 'tokenizer', processor)
        self.reference_radius = reference_radius
        self.image_id = getattr(processor, 'image_token_id', None)
        self.digit_ids = digit_token_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = self.tokenizer.eos_token_id if pad is None else pad

    def chat_texts(self, prompt: str, answer: str) -> tuple[str, str]:
        """Return the whole conversation and its assistant part (reply + end of turn)."""
        user, reply = user_turn(prompt), assistant_turn(answer)
        head = self.processor.apply_chat_template([user], add_generation_prompt=True,
                                                  tokenize=False)
        full = self.processor.apply_chat_template([user, reply], tokenize=False).rstrip()
        if not full.startswith(head) or answer not in full[len(head):]:
            raise ValueError('the chat template does not render the reply after the prompt')
        return full, full[len(head):]

    def encode(self, sample: dict) -> dict:
        """Encode one sample (image: PIL image or path): tensors, labels, coordinate digits."""
        full, reply = self.chat_texts(sample['prompt'], sample['answer'])
        encoded = dict(self.processor(images=[rgb_image(sample['image'])], text=[full],
                                      return_tensors='pt'))
        tail = self.tokenizer(reply, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded['input_ids']
        start = ids.shape[1] - len(tail['input_ids'])
        if ids[0, start:].tolist() != tail['input_ids']:
            raise ValueError('the reply tokenizes differently inside the conversation')
        encoded['labels'] = torch.where(torch.arange(ids.shape[1]) < start, -100, ids)
        digits, values = answer_digits(reply, tail['offset_mapping'])
        encoded['digits'] = [(start + i - 1, place, n) for i, place, n in digits]
        encoded['values'] = values
        if self.reference_radius is not None:
            encoded['reference'] = self.reference_targets(reply, tail['offset_mapping'], start,
                                                          ids[0])
        return encoded

    def reference_targets(self, reply: str, offsets: list, start: int, ids) -> list:
        """
        Return (position, image-token mask) for each token of the reply's supervised points.

        Those are the reference point's ``(x, y)`` and, where step 3 gives one, the target
        area's centre. Positions are those that predict the tokens; each mask marks the image
        tokens whose patch centres lie within ``reference_radius`` of its point (at least the
        point's own patch), on the square patch grid of processors that resize without cropping.
        """
        image = (ids == self.image_id).nonzero().squeeze(1) if self.image_id is not None else []
        grid = round(len(image) ** 0.5)
        if grid * grid != len(image) or grid == 0:
            return []
        centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        targets = []
        for (first, last), point in grounded_point_spans(reply):
            x, y = (min(max(value, 0.0), 1.0) for value in point)
            near = ((centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2).sqrt()
            near = near <= self.reference_radius
            near[min(int(y * grid), grid - 1), min(int(x * grid), grid - 1)] = True
            mask = torch.zeros(len(ids), dtype=torch.bool)
            mask[image[near.reshape(-1)]] = True
            targets += [(start + i - 1, mask) for i, (a, b) in enumerate(offsets)
                        if b > a and b > first and a < last]
        return targets

    def __call__(self, samples: list[dict]) -> dict:
        """Encode and pad ``samples``."""
        encoded = [self.encode(s) for s in samples]
        length = max(e['input_ids'].shape[1] for e in encoded)
        pad_values = {'input_ids': self.pad_id, 'labels': -100}
        batch = {}
        for key, first in encoded[0].items():
            if key in ('digits', 'values', 'reference'):
                continue
            if first.shape == encoded[0]['input_ids'].shape:  # one value per token
                batch[key] = torch.cat([torch.nn.functional.pad(
                    e[key], (0, length - e[key].shape[1]), value=pad_values.get(key, 0))
                    for e in encoded])
            else:
                batch[key] = torch.cat([e[key] for e in encoded])
        if self.digit_ids is not None:
            batch.update(self.coordinates(encoded))
        if self.reference_radius is not None:
            batch.update(self.references(encoded, length))
        return batch

    @staticmethod
    def references(encoded: list[dict], length: int) -> dict:
        """Flatten the reference-point targets of all samples into ``REFERENCE_KEYS`` tensors."""
        rows = [(index, position, mask) for index, sample in enumerate(encoded)
                for position, mask in sample['reference']]
        target = torch.zeros((len(rows), length), dtype=torch.bool)
        for row, (_, _, mask) in enumerate(rows):
            target[row, :len(mask)] = mask
        return {'reference_batch': torch.tensor([r[0] for r in rows], dtype=torch.long),
                'reference_position': torch.tensor([r[1] for r in rows], dtype=torch.long),
                'reference_target': target}

    @staticmethod
    def coordinates(encoded: list[dict]) -> dict:
        """Flatten the digits of all samples into ``COORD_KEYS`` tensors."""
        rows, numbers, values = [], 0, []
        for index, sample in enumerate(encoded):
            rows += [(index, pos, place, numbers + n) for pos, place, n in sample['digits']]
            numbers += len(sample['values'])
            values += sample['values']
        columns = torch.tensor(rows, dtype=torch.long).reshape(-1, 4).T
        return {**dict(zip(COORD_KEYS[:4], columns)),
                'coord_target': torch.tensor(values, dtype=torch.float32)}


def coordinate_l1(logits: torch.Tensor, coords: dict, digit_ids: list[int]) -> torch.Tensor:
    """
    Mean |expected - true| over the answer coordinates.

    Each digit is its expectation under the model's distribution restricted to the ten digit
    tokens; a coordinate ``0.d1d2d3`` is then ``sum_k E[d_k] 10^-k``.
    """
    digit_logits = logits[coords['coord_batch'], coords['coord_position']][:, digit_ids]
    values = torch.arange(10, dtype=torch.float32, device=logits.device)
    expected_digits = digit_logits.float().softmax(-1) @ values
    scaled = expected_digits * 10.0 ** -coords['coord_place'].float()
    target = coords['coord_target'].float()
    expected = torch.zeros_like(target).index_add(0, coords['coord_number'], scaled)
    return (expected - target).abs().mean()


def reference_attention_loss(attentions: tuple, references: dict, head: int = 0) -> torch.Tensor:
    """
    Mean -log(attention mass on the reference's patches) of the reference point's tokens.

    Taken in one head of every decoder layer but the first (which mixes the prompt), as the
    localization stage does (``trace_train.grounding.localize``).
    """
    batch, position = references['reference_batch'], references['reference_position']
    target = references['reference_target'].float()
    terms = [-torch.log((layer[batch, head, position] * target).sum(-1) + 1e-4).mean()
             for layer in attentions[1:]]
    return torch.stack(terms).mean()


class TraceTrainer(Trainer):
    """
    A Trainer whose loss is the reply's cross-entropy plus the optional auxiliary terms.

    ``coord_l1`` x the coordinate L1 and ``reference_attention`` x the reference attention
    loss.
    """

    loss_is_scaled_for_ga = False  # per micro-batch means; the Trainer divides by grad_accum

    def __init__(self, *args, coord_l1: float = 0.0, digit_ids: list[int] | None = None,
                 reference_attention: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.coord_l1 = coord_l1
        self.reference_attention = reference_attention
        self.digit_ids = digit_ids
        self.loss_parts = collections.defaultdict(list)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Return the loss; remember its parts for the next log."""
        coords = {key: inputs.pop(key) for key in COORD_KEYS if key in inputs}
        references = {key: inputs.pop(key) for key in REFERENCE_KEYS if key in inputs}
        supervise = bool(references) and references['reference_batch'].numel() > 0
        outputs = model(**inputs, output_attentions=supervise)
        loss = outputs.loss
        if model.training:
            self.loss_parts['ce_loss'].append(loss.detach())
        if coords and coords['coord_target'].numel():
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.coord_l1 > 0):
                error = coordinate_l1(outputs.logits, coords, self.digit_ids)
            if self.coord_l1 > 0:
                loss = loss + self.coord_l1 * error
            if model.training:
                self.loss_parts['coord_l1'].append(error.detach())
        if supervise:
            attention = reference_attention_loss(outputs.attentions, references)
            loss = loss + self.reference_attention * attention
            if model.training:
                self.loss_parts['reference_attention'].append(attention.detach())
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, start_time: float | None = None) -> None:
        """Add the mean loss parts since the last log to the training logs."""
        if 'loss' in logs:
            logs.update({key: torch.stack(values).mean().item()
                         for key, values in self.loss_parts.items()})
            self.loss_parts.clear()
        super().log(logs, start_time)


class TimeLimit(TrainerCallback):
    """Stop training and save a checkpoint once ``minutes`` of wall time have passed."""

    def __init__(self, minutes: float):
        self.seconds = 60.0 * minutes
        self.start = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the clock."""
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        """Ask the Trainer to save and stop when the time is up."""
        if time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True
            control.should_save = True


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


def add_lora(model: torch.nn.Module, args: FinetuneArgs) -> torch.nn.Module:
    """
    Wrap ``model`` with LoRA on the decoder (and the tower if not frozen).

    The projector trains in full unless ``--freeze-projector``.
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


def load_model(args: FinetuneArgs) -> torch.nn.Module:
    """Load the base model and make the parts ``--method`` trains trainable."""
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=dtype)
    if args.freeze_vision:
        freeze_image_path(model, args.freeze_projector)
    elif args.freeze_projector:
        raise ValueError('--freeze-projector needs the vision tower frozen too')
    return add_lora(model, args) if args.method == 'lora' else model


def parameter_counts(model: torch.nn.Module) -> dict:
    """Return the numbers of parameters and of trainable parameters."""
    return {'parameters': sum(p.numel() for p in model.parameters()),
            'trainable_parameters': sum(p.numel() for p in model.parameters() if p.requires_grad)}


def training_arguments(args: FinetuneArgs) -> TrainingArguments:
    """Translate the options into ``TrainingArguments``."""
    return TrainingArguments(
        output_dir=args.out, num_train_epochs=args.epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_ratio,
        lr_scheduler_type=args.scheduler, seed=args.seed, bf16=args.bf16,
        use_cpu=args.bf16 and not torch.cuda.is_available(),  # bf16 on a CPU must be asked for
        activation_checkpointing=args.gradient_checkpointing,
        activation_checkpointing_kwargs={'use_reentrant': False},
        logging_steps=args.logging_steps, logging_first_step=True, save_steps=args.save_steps,
        save_total_limit=args.save_total_limit, report_to=args.report_to,
        dataloader_num_workers=args.workers, dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False, label_names=['labels'],
        deepspeed=args.deepspeed)


def save_models(trainer: Trainer, processor, args: FinetuneArgs) -> None:
    """Save OUT/final (LoRA: merged, and the adapter in OUT/adapter), each with the processor."""
    out = pathlib.Path(args.out)
    if args.method == 'full':
        trainer.save_model(str(out / 'final'))
        return
    trainer.save_model(str(out / 'adapter'))
    if trainer.is_world_process_zero():
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(out / 'final')
        processor.save_pretrained(out / 'final')


def parse_args(argv: list[str] | None = None) -> FinetuneArgs:
    """Parse and check the command line."""
    parser = HfArgumentParser(FinetuneArgs, description=__doc__.strip().splitlines()[0])
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    if not 0.0 <= args.cor_fraction <= 1.0 or not 0.0 <= args.warmup_ratio < 1.0:
        parser.error('--cor-fraction must be in [0, 1] and --warmup-ratio in [0, 1)')
    if args.method == 'lora' and args.lora_r < 1:
        parser.error('--method lora needs --lora-r >= 1')
    return args


def main(argv: list[str] | None = None) -> dict:
    """Fine-tune as the command line says; return (and write) the training summary."""
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    processor = AutoProcessor.from_pretrained(args.model)
    samples = load_samples(args.data, args.cor_fraction, args.seed, args.max_samples)
    collator = ChatCollator(processor, args.reference_radius if args.reference_attention > 0
                            else None)
    if args.coord_l1 > 0 and collator.digit_ids is None:
        raise ValueError('--coord-l1 needs a tokenizer that gives every digit its own token')
    model = load_model(args)
    if args.reference_attention > 0:  # attention weights come from the eager implementation
        model.set_attn_implementation('eager')
    parameters = parameter_counts(model)
    trainer = TraceTrainer(
        model=model, args=training_arguments(args), train_dataset=samples,
        data_collator=collator, processing_class=processor,
        callbacks=[TimeLimit(args.max_minutes)] if args.max_minutes else None,
        coord_l1=args.coord_l1, digit_ids=collator.digit_ids,
        reference_attention=args.reference_attention)
    checkpoint = get_last_checkpoint(str(out)) if args.resume and out.is_dir() else None
    metrics = trainer.train(resume_from_checkpoint=checkpoint).metrics
    if args.reference_attention > 0:
        model.set_attn_implementation('sdpa')
    save_models(trainer, processor, args)
    losses = [entry['loss'] for entry in trainer.state.log_history if 'loss' in entry]
    summary = {
        'args': dataclasses.asdict(args), 'samples': len(samples),
        'cor_samples': sum(s['cor'] for s in samples), 'resumed_from': checkpoint, **parameters,
        'steps': trainer.state.global_step, 'planned_steps': trainer.state.max_steps,
        'epochs': trainer.state.epoch,
        'train_time_s': metrics['train_runtime'],
        'samples_per_second': metrics['train_samples_per_second'],
        'steps_per_second': metrics['train_steps_per_second'],
        'first_loss': losses[0] if losses else None, 'last_loss': losses[-1] if losses else None,
        'losses': losses, 'final': str(out / 'final')}
    if trainer.is_world_process_zero():
        (out / 'train_summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    return summary


if __name__ == '__main__':
    main()
