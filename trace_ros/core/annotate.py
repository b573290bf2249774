"""Annotated frames for people: answer points, their centre and a reasoning excerpt."""

import textwrap
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

POINT_COLOR = (255, 40, 40)
GOAL_COLOR = (40, 255, 40)
MASK_COLOR = np.array([40, 120, 255], dtype=np.float32)


def annotate(rgb: np.ndarray, pixels: np.ndarray, *, valid: Optional[np.ndarray] = None,
             goal_pixel: Optional[Sequence[float]] = None, text: str = '',
             mask: Optional[np.ndarray] = None, max_text_lines: int = 6) -> np.ndarray:
    """
    Draw answer points (hollow when they had no depth), the goal and text on a copy.

    ``pixels`` are (N, 2) ROS pixel coordinates; ``mask`` (HxW bool) is tinted, e.g. a
    ground-truth target region. Returns an HxWx3 uint8 RGB array.
    """
    canvas = np.asarray(rgb, dtype=np.uint8).copy()
    if mask is not None:
        tinted = canvas.astype(np.float32)
        tinted[mask] = 0.55 * tinted[mask] + 0.45 * MASK_COLOR
        canvas = tinted.astype(np.uint8)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    radius = max(2, round(min(image.size) / 120))
    pixels = np.asarray(pixels, dtype=float).reshape(-1, 2)
    valid = np.ones(len(pixels), bool) if valid is None else np.asarray(valid, bool)
    for (u, v), ok in zip(pixels, valid):
        box = (u - radius, v - radius, u + radius, v + radius)
        draw.ellipse(box, fill=POINT_COLOR if ok else None, outline=POINT_COLOR, width=1)
    if goal_pixel is not None and np.all(np.isfinite(goal_pixel)):
        u, v = goal_pixel
        r = 3 * radius
        draw.line((u - r, v, u + r, v), fill=GOAL_COLOR, width=2)
        draw.line((u, v - r, u, v + r), fill=GOAL_COLOR, width=2)
    if text:
        width_chars = max(20, image.size[0] // 7)
        lines = []
        for paragraph in text.splitlines():
            lines.extend(textwrap.wrap(paragraph, width_chars) or [''])
        lines = lines[:max_text_lines]
        line_height = 12
        draw.rectangle((0, 0, image.size[0], line_height * len(lines) + 4), fill=(0, 0, 0))
        for i, line in enumerate(lines):
            draw.text((3, 2 + i * line_height), line, fill=(255, 255, 255))
    return np.asarray(image)
