"""Research code that is not part of the ``trace_train`` library (see each folder's README)."""
