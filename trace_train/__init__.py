"""
Training and data for TRACE models, laid out as a library with thin command lines.

``data`` (dataset pipeline), ``model`` (the tiny VLM builder), ``train`` (config, collator,
losses, trainer) and ``eval`` (evaluation and diagnostics); ``finetune``, ``evaluate``,
``chain``, ``probe``, ``ablation`` and ``attention`` are the ``python -m`` entry points.
"""
