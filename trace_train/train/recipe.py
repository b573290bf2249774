"""
Read a run's options from a recipe: ``--config recipe.yaml`` plus command-line overrides.

The recipe's keys are the dataclass fields; options given on the command line win. This is
``HfArgumentParser`` with the YAML file as its defaults, so ``--help`` lists every field.
"""

import argparse
import pathlib

from transformers import HfArgumentParser
import yaml


def parse_recipe(dataclass_type, argv: list[str] | None = None, description: str | None = None):
    """Return ``dataclass_type`` filled from ``--config`` (if given) and the other options."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--config', help='recipe YAML file; command-line options override it')
    known, rest = pre.parse_known_args(argv)
    parser = HfArgumentParser(dataclass_type, description=description,
                              epilog='--config RECIPE.yaml sets any of these options by name.')
    if known.config:
        recipe = yaml.safe_load(pathlib.Path(known.config).read_text()) or {}
        unknown = set(recipe) - {action.dest for action in parser._actions}
        if unknown:
            parser.error(f'{known.config}: unknown keys {sorted(unknown)}')
        parser.set_defaults(**recipe)
        for action in parser._actions:
            if action.dest in recipe:
                action.required = False
    (config,) = parser.parse_args_into_dataclasses(args=rest)
    return config
