"""
Evaluation and diagnostics of trained models.

``evaluate`` (Where2Place-style accuracy with intervals), ``chain`` (accuracy given the first K
true reasoning steps), ``probe`` (does a reply's position use the image), ``ablation`` (accuracy
against the CoR fraction) and ``attention`` (where each reasoning step looks). Each has a
``python -m trace_train.<name>`` command line.
"""
