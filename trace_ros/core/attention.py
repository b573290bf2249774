"""
Where a reply looked in the image, step by step of the chain of reasoning (CoR).

A reply's tokens are assigned to the CoR steps the parser finds (``step_spans``). The attention
from each reply token to the image tokens, averaged over heads and layers, is averaged over a
step's tokens and normalized over the image-token grid: a (rows, cols) map summing to 1.
Concentration statistics and an overlay renderer (numpy + PIL) come with it.
"""

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw
from trace_ros.core.parsing import step_spans

REPLY = 'reply'
TOP_FRACTION = 0.1
# Anchors of a perceptually ordered colormap (close to matplotlib's inferno), low to high.
_COLORMAP = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                      [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class AttentionResult:
    """
    Attention of a reply to its image.

    ``maps`` holds a (rows, cols) map summing to 1 for REPLY (all reply tokens) and for each
    step found in ``text`` (``STEP_KEYS`` order); ``image_share`` the mean attention mass the
    tokens of each gave the image tokens (the rest went to text); ``spans`` the steps'
    character spans; ``offsets`` each token's character span; ``layers`` the decoder layers
    averaged; ``token_maps`` (tokens, rows, cols), each summing to 1, when asked for.
    """

    text: str
    grid: Tuple[int, int]
    spans: Dict[str, Tuple[int, int]]
    maps: Dict[str, np.ndarray]
    image_share: Dict[str, float]
    offsets: Tuple[Tuple[int, int], ...]
    layers: Tuple[int, ...]
    token_maps: Optional[np.ndarray] = None


def segment_tokens(offsets: Sequence[Tuple[int, int]],
                   spans: Mapping[str, Tuple[int, int]]) -> Dict[str, List[int]]:
    """
    Assign each token to the span it overlaps most; a token overlapping none is left out.

    ``offsets`` are the tokens' (start, end) characters in the text, ``spans`` name -> (start,
    end), e.g. ``step_spans(text)``. Returns name -> token indices for the names that got any.
    """
    segments = {name: [] for name in spans}
    for index, (start, end) in enumerate(offsets):
        overlaps = {name: min(end, span_end) - max(start, span_start)
                    for name, (span_start, span_end) in spans.items()}
        best = max(overlaps, key=overlaps.get, default=None)
        if best is not None and overlaps[best] > 0:
            segments[best].append(index)
    return {name: tokens for name, tokens in segments.items() if tokens}


def grid_map(weights: np.ndarray, grid: Tuple[int, int]) -> np.ndarray:
    """Return image-token ``weights`` as a (rows, cols) map summing to 1 (uniform if all 0)."""
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None).reshape(grid)
    total = weights.sum()
    return weights / total if total > 0 else np.full(grid, 1.0 / weights.size)


def build_result(text: str, offsets: Sequence[Tuple[int, int]], attention: np.ndarray,
                 grid: Tuple[int, int], layers: Sequence[int],
                 token_maps: bool = False) -> AttentionResult:
    """
    Reduce a reply's attention to per-step maps.

    ``attention`` is (layers, heads, tokens, image tokens): from each reply token (``offsets``
    its characters in ``text``) to the image tokens, in row-major ``grid`` order.
    """
    per_token = np.asarray(attention, dtype=np.float64).mean(axis=(0, 1))
    spans = step_spans(text)
    segments = {**segment_tokens(offsets, {REPLY: (0, len(text))}),
                **segment_tokens(offsets, spans)}
    maps = {name: grid_map(per_token[tokens].mean(0), grid) for name, tokens in segments.items()}
    share = {name: float(per_token[tokens].sum(1).mean()) for name, tokens in segments.items()}
    per_token_maps = None
    if token_maps:
        per_token_maps = np.array([grid_map(row, grid) for row in per_token]).reshape(-1, *grid)
    return AttentionResult(text=text, grid=tuple(grid), spans=spans, maps=maps,
                           image_share=share, offsets=tuple(map(tuple, offsets)),
                           layers=tuple(layers), token_maps=per_token_maps)


def normalized_entropy(attention_map: np.ndarray) -> float:
    """Return the entropy of a map summing to 1 over that of the uniform map: 1 flat, 0 one-hot."""
    p = np.asarray(attention_map, dtype=np.float64).ravel()
    cells = p.size
    if cells < 2:
        return 0.0
    p = p[p > 0]
    return float(np.clip(-(p * np.log(p)).sum() / math.log(cells), 0.0, 1.0))


def top_mass(attention_map: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Return the mass of the ``fraction`` highest cells of a map (at least one cell)."""
    p = np.sort(np.asarray(attention_map, dtype=np.float64).ravel())[::-1]
    return float(p[:max(1, math.ceil(fraction * p.size))].sum())


def concentration(attention_map: np.ndarray) -> Dict[str, float]:
    """Return the normalized entropy and the top-10% mass of a map."""
    return {'entropy': normalized_entropy(attention_map), 'top10_mass': top_mass(attention_map)}


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB colours, dark (low) to bright yellow (high)."""
    positions = np.clip(values, 0.0, 1.0) * (len(_COLORMAP) - 1)
    anchors = np.arange(len(_COLORMAP))
    channels = [np.interp(positions, anchors, _COLORMAP[:, c]) for c in range(3)]
    return np.stack(channels, -1).round().astype(np.uint8)


def overlay(image: np.ndarray, attention_map: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a map over ``image`` (HxWx3 uint8): upsampled bilinearly, scaled to its maximum."""
    height, width = image.shape[:2]
    values = Image.fromarray(np.asarray(attention_map, dtype=np.float32))
    values = np.asarray(values.resize((width, height), Image.BILINEAR), dtype=np.float64)
    peak = values.max()
    heat = colorize(values / peak if peak > 0 else values)
    return ((1.0 - alpha) * image + alpha * heat).round().astype(np.uint8)


def step_label(name: str, attention_map: np.ndarray) -> str:
    """Return a short caption: the step's name and its normalized entropy."""
    return f'{name.replace("_", " ")}  H={normalized_entropy(attention_map):.2f}'


def attention_panel(image: np.ndarray, maps: Mapping[str, np.ndarray],
                    tile_height: int = 240) -> np.ndarray:
    """Tile one labelled overlay per map side by side, each ``tile_height`` pixels high."""
    if not maps:
        raise ValueError('no attention maps to tile')
    height, width = image.shape[:2]
    size = (max(1, round(width * tile_height / height)), tile_height)
    tiles = []
    for name, attention_map in maps.items():
        tile = Image.fromarray(overlay(image, attention_map)).resize(size, Image.BILINEAR)
        draw = ImageDraw.Draw(tile)
        draw.rectangle((0, 0, size[0], 14), fill=(0, 0, 0))
        draw.text((3, 2), step_label(name, attention_map), fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    return np.concatenate(tiles, axis=1)
