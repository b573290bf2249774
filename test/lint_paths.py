"""The hand-written Python sources the linters check (not build/, install/ or generated code)."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT_PATHS = [str(ROOT / p) for p in ('trace_ros', 'trace_train', 'test', 'scripts', 'setup.py')
              if (ROOT / p).exists()]
