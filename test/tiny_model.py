"""The tiny LLaVA model the backend tests share: built once per test session, from configs."""

import atexit
import json
import pathlib
import shutil
import tempfile

import numpy as np

TEXTS = [
    'Place the red cup to the left of the plate.',
    'Put the bowl in the free space between the mug and the box.',
    'Reasoning: the plate is at (0.42, 0.55); left of it is free table. Answer: [(0.31, 0.56)]',
    'Reasoning: the mug is at (0.20, 0.35) and the box at (0.70, 0.40); the midpoint is free. '
    'Answer: [(0.45, 0.38), (0.47, 0.36)]',
    'Put the apple above the green block, below the shelf, right of the can.',
]
_BUILT: dict[str, pathlib.Path] = {}


def tiny_model_dir() -> pathlib.Path:
    """Build the tiny VLM on first use (default sizes) and return its directory."""
    if 'dir' not in _BUILT:
        from trace_train.model.tiny_vlm import build_tiny_vlm
        root = pathlib.Path(tempfile.mkdtemp(prefix='trace_tiny_vlm_'))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _BUILT['dir'] = build_tiny_vlm(root / 'tiny-llava', TEXTS)
    return _BUILT['dir']


def noise_image(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    """Return a seeded noise image, which the random model answers with space-separated text."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def eos_token_id() -> int:
    """Return the tiny model's end-of-sequence token id."""
    config = json.loads((tiny_model_dir() / 'generation_config.json').read_text())
    return config['eos_token_id']
