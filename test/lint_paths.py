"""The hand-written Python sources the linters check (not build/, install/ or generated code)."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINT_PATHS = [str(ROOT / p) for p in ('trace_ros', 'trace_train', 'experiments', 'test', 'scripts',
                                      'launch', 'setup.py')
              if (ROOT / p).exists()]
LINT_PATHS += [str(p) for p in sorted((ROOT / 'bin').glob('*'))]
