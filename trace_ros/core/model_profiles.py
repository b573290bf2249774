"""
Model profiles: how to prompt a VLM family and how to read its points (config/model_profiles.yaml).

A profile turns an instruction into the family's prompt (``cor``: TRACE's chain of reasoning
ending in the family's own answer format; ``plain``: its native pointing prompt) and its reply
into the ``ParsedAnswer`` the pipeline uses: CoR steps as ``parse_answer`` finds them, points
converted from the family's convention to normalized image points. ``resolve_profile`` picks
one by name, or for ``auto`` from a model directory's config.json or a served model's name.
"""

import dataclasses
import functools
import json
import os
import pathlib
import re
from typing import Dict, Optional, Sequence, Tuple

from trace_ros.core import point_conventions
from trace_ros.core.answer_format import ANSWER_MARKER
from trace_ros.core.parsing import parse_answer, ParsedAnswer
from trace_ros.core.prompts import build_prompt, COR_SUFFIX, ROBOPOINT_SUFFIX
import yaml

TABLE_NAME = 'model_profiles.yaml'
DEFAULT_PROFILE = 'trace'
_COR_STEPS = COR_SUFFIX.rsplit(ANSWER_MARKER, 1)[0]


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    """One row of the profile table, optionally bound to a model's processor settings."""

    name: str
    family: str
    convention: str
    answer: str
    coordinates: str
    native: str
    processor: Tuple[Tuple[str, object], ...] = ()
    detect: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()

    def setting(self, key: str, default=None):
        """Return a processor setting of the profile (resize_factor, trust_remote_code, ...)."""
        return dict(self.processor).get(key, default)

    def with_settings(self, **settings) -> 'ModelProfile':
        """Return the profile with processor settings overridden (e.g. a model's own)."""
        merged = {**dict(self.processor), **{k: v for k, v in settings.items() if v is not None}}
        return dataclasses.replace(self, processor=tuple(sorted(merged.items())))

    @property
    def writes_trace_format(self) -> bool:
        """Whether replies follow TRACE's format (its reply grammar applies to them)."""
        return self.native == 'robopoint' and self.convention == 'normalized'

    def build_prompt(self, instruction: str, style: str = 'cor', num_points: int = 0) -> str:
        """
        Return the prompt for ``instruction``: ``cor`` (TRACE steps) or ``plain`` (native).

        ``num_points`` > 0 asks for that many points where the family's prompt can say so
        (TRACE / RoboPoint); every family's reply is capped to it when it is parsed.
        """
        if self.writes_trace_format:  # the TRACE / RoboPoint prompts themselves
            return build_prompt(instruction, style, num_points=num_points)
        question = build_prompt(instruction, 'plain')[:-len(ROBOPOINT_SUFFIX)].strip()
        if style == 'plain':
            return f'{question} {self.native}'
        if style != 'cor':
            raise ValueError(f"unknown prompt style {style!r}; expected 'cor' or 'plain'")
        return f'{question} {_COR_STEPS}{ANSWER_MARKER} {self.answer}\n{self.coordinates}'

    def input_size(self, image_size: Sequence[int]) -> Optional[Tuple[int, int]]:
        """Return the (width, height) the model's processor resizes ``image_size`` to, if known."""
        factor = self.setting('resize_factor')
        if not factor:
            return None
        width, height = (int(v) for v in image_size)
        return point_conventions.smart_resize(
            width, height, int(factor), int(self.setting('min_pixels', 56 * 56)),
            int(self.setting('max_pixels', 14 * 14 * 4 * 1280)))

    def parse(self, text: str, image_size: Sequence[int]) -> ParsedAnswer:
        """Parse a reply into CoR steps and normalized points; never raises on any text."""
        parsed = parse_answer(text, image_size=image_size)
        if self.convention == 'normalized':
            return parsed
        text = text if isinstance(text, str) else str(text or '')
        start, end = point_conventions.answer_region(text)
        pairs = point_conventions.find_pairs(text[start:end], self.convention)
        points, errors = point_conventions.to_normalized(
            pairs, self.convention, self.input_size(image_size))
        if not pairs:
            errors = [f'no points in the {self.name} convention ({self.convention}) found']
        points.flags.writeable = False
        return dataclasses.replace(
            parsed, points=points, answer=text[start:end].strip(), span=(start, end),
            answer_format=self.convention, source='marker' if start else 'whole',
            rejected=len(pairs) - len(points), errors=tuple(errors))


def table_path() -> pathlib.Path:
    """Return config/model_profiles.yaml of this checkout, or of the installed share dir."""
    source = pathlib.Path(__file__).resolve().parents[2] / 'config' / TABLE_NAME
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return pathlib.Path(get_package_share_directory('trace_ros')) / 'config' / TABLE_NAME
    except (ImportError, LookupError):
        return source


def _row(name: str, row: dict) -> ModelProfile:
    convention = row.get('convention')
    if convention not in point_conventions.CONVENTIONS:
        raise ValueError(f'profile {name}: convention {convention!r} is not one of '
                         f'{point_conventions.CONVENTIONS}')
    missing = [k for k in ('family', 'answer', 'coordinates', 'native') if not row.get(k)]
    if missing:
        raise ValueError(f'profile {name}: missing {", ".join(missing)}')
    native = ROBOPOINT_SUFFIX if row['native'] == 'robopoint' else ' '.join(row['native'].split())
    detect = tuple((key, tuple(str(v) for v in values))
                   for key, values in sorted((row.get('detect') or {}).items()))
    return ModelProfile(name, row['family'], convention, row['answer'], row['coordinates'],
                        'robopoint' if row['native'] == 'robopoint' else native,
                        tuple(sorted((row.get('processor') or {}).items())), detect)


@functools.lru_cache(maxsize=4)
def load_profiles(path: Optional[str] = None) -> Dict[str, ModelProfile]:
    """Load the profile table (default: ``table_path()``); ValueError names a bad row."""
    with open(path or table_path(), encoding='utf-8') as stream:
        table = yaml.safe_load(stream)
    if not isinstance(table, dict) or DEFAULT_PROFILE not in table:
        raise ValueError(f'{path or table_path()}: a mapping with a {DEFAULT_PROFILE!r} row '
                         'is needed')
    return {name: _row(name, row) for name, row in table.items()}


def read_model_config(model_dir: Optional[str]) -> dict:
    """Return a model directory's config.json (empty when there is none)."""
    path = pathlib.Path(os.path.expanduser(model_dir or '')) / 'config.json'
    try:
        config = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def detect_profile(model_dir: Optional[str] = None, model_name: str = '',
                   profiles: Optional[Dict[str, ModelProfile]] = None) -> Tuple[str, str]:
    """
    Return (profile name, why) for a model directory and/or a served model name.

    Names (directory name, ``_name_or_path``, served name) are matched first, since fine-tunes keep
    their base's architecture; then architectures, then model_type; else the default profile.
    """
    profiles = profiles or load_profiles()
    config = read_model_config(model_dir)
    names = [model_name, os.path.basename((model_dir or '').rstrip('/')),
             config.get('_name_or_path', '')]
    names = [n.lower() for n in names if n]
    facts = {'names': names, 'architectures': config.get('architectures') or [],
             'model_types': [config.get('model_type', '')]}
    for key in ('names', 'architectures', 'model_types'):
        for profile in profiles.values():
            for pattern in dict(profile.detect).get(key, ()):
                for value in facts[key]:
                    if (re.search(pattern, value) if key == 'names' else pattern == value):
                        return profile.name, f'{key[:-1]} {value!r} matches {pattern!r}'
    return DEFAULT_PROFILE, 'nothing matched; the TRACE convention (normalized points)'


def processor_settings(model_dir: Optional[str]) -> dict:
    """Return the resize settings in a model's preprocessor_config.json (only those present)."""
    path = pathlib.Path(os.path.expanduser(model_dir or '')) / 'preprocessor_config.json'
    try:
        config = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return {}
    size = config.get('size') if isinstance(config.get('size'), dict) else {}
    settings = {'min_pixels': config.get('min_pixels') or size.get('shortest_edge'),
                'max_pixels': config.get('max_pixels') or size.get('longest_edge')}
    if config.get('patch_size') and config.get('merge_size'):
        settings['resize_factor'] = int(config['patch_size']) * int(config['merge_size'])
    return {k: v for k, v in settings.items() if v}


def resolve_profile(name: str = 'auto', model_dir: Optional[str] = None,
                    model_name: str = '') -> Tuple[ModelProfile, str]:
    """
    Return (profile, why) for a ``model_profile`` value: a table row's name or ``auto``.

    A profile that resizes images takes the model directory's own resize settings.
    """
    profiles = load_profiles()
    if name == 'auto':
        name, why = detect_profile(model_dir, model_name, profiles)
    elif name in profiles:
        why = 'set by model_profile'
    else:
        raise ValueError(f"model_profile {name!r} is not 'auto' or one of {sorted(profiles)}")
    profile = profiles[name]
    if profile.setting('resize_factor'):
        profile = profile.with_settings(**processor_settings(model_dir))
    return profile, why


def profile_names() -> Tuple[str, ...]:
    """Return 'auto' and the table's profile names, for the parameter's choices."""
    return ('auto',) + tuple(load_profiles())
