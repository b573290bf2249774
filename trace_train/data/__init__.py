"""
The TRACE dataset pipeline: simulated scenes to instructions, reasoning, points and masks.

Modules: ``regions`` (3D target regions and their image masks), ``relations`` (the
relations and the region each defines), ``language`` (instructions and Chain of
Reasoning text), ``samples`` (one scene to checked samples), ``generate`` (parallel,
resumable training-set CLI), ``make_eval_sets`` (Where2Place-layout evaluation sets CLI),
``report`` (statistics, plot, contact sheet) and ``hf`` (Hugging Face ``datasets``
loaders). docs/DATASET.md describes the outputs.
"""
