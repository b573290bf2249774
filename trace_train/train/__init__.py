"""
Fine-tuning library: one Trainer, its configuration, data collator and losses.

``config`` (``TraceTrainingConfig``, a ``TrainingArguments``), ``samples`` (the CoR / plain
choice per sample), ``collator`` (chat-template encoding, labels, loss targets), ``losses``
(coordinate L1, attention supervision), ``modules`` (freezing, LoRA, saving) and ``trainer``
(``TraceTrainer``); ``trace_train.finetune`` is the command line.
"""
