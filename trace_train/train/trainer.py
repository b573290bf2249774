"""The one Trainer: the reply's cross-entropy plus the auxiliary losses, each logged."""

import collections

import torch
from trace_train.train.collator import COORD_KEYS, REFERENCE_KEYS
from trace_train.train.losses import attention_loss, coordinate_l1
from transformers import Trainer


class TraceTrainer(Trainer):
    """
    A Trainer whose loss is the reply's cross-entropy plus the optional auxiliary terms.

    ``args`` is a ``TraceTrainingConfig``: ``coord_l1`` x the coordinate L1 (on the digits the
    ``ChatCollator`` located) and ``reference_attention`` x the attention supervision of the
    reference point's tokens.
    """

    loss_is_scaled_for_ga = False  # per micro-batch means; the Trainer divides by grad_accum

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.coord_l1 = self.args.coord_l1
        self.reference_attention = self.args.reference_attention
        self.digit_ids = getattr(self.data_collator, 'digit_ids', None)
        if self.coord_l1 > 0 and self.digit_ids is None:
            raise ValueError('coord_l1 needs a tokenizer that gives every digit its own token')
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
            attention = attention_loss(outputs.attentions, *(references[key]
                                                             for key in REFERENCE_KEYS))
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
