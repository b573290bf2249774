"""
Everyday tabletop objects built from MuJoCo primitives, with sizes drawn from a generator.

Every shape's body frame sits at the centre of its bottom face (z up), so an object rests
on a surface when its body origin is on it. Bowls and mugs are hollow (rings of thin
boxes), so they look and collide like containers; all parts are convex primitives.
"""

import colorsys
import dataclasses
import math
from typing import Callable, Dict, List, Tuple

import numpy as np

CATEGORIES = ('box', 'can', 'bottle', 'plate', 'bowl', 'mug', 'block')

# Colour names usable in instructions; none of them close to the wooden table.
COLOURS: Dict[str, Tuple[float, float, float]] = {
    'red': (0.80, 0.10, 0.10), 'green': (0.15, 0.60, 0.20), 'blue': (0.15, 0.30, 0.80),
    'yellow': (0.95, 0.82, 0.15), 'orange': (0.95, 0.50, 0.10), 'purple': (0.50, 0.20, 0.65),
    'white': (0.92, 0.92, 0.90), 'black': (0.12, 0.12, 0.12), 'grey': (0.55, 0.55, 0.57),
    'pink': (0.95, 0.55, 0.70), 'cyan': (0.20, 0.75, 0.80),
}
# More named colours, used only by randomized worlds (the default scenes keep COLOURS).
EXTRA_COLOURS: Dict[str, Tuple[float, float, float]] = {
    'brown': (0.45, 0.27, 0.12), 'magenta': (0.85, 0.12, 0.65), 'lime': (0.60, 0.88, 0.18),
    'olive': (0.42, 0.45, 0.08),
}
ALL_COLOURS = {**COLOURS, **EXTRA_COLOURS}
# Lightness limits (HSV value) that keep the achromatic names true under a tint.
ACHROMATIC = {'white': (0.8, 1.0), 'black': (0.04, 0.2), 'grey': (0.4, 0.68)}
ACCENT_RGBA = (0.78, 0.78, 0.80, 1.0)  # can lids, bottle caps
WALL = 0.006  # wall thickness of bowls and mugs (m)


@dataclasses.dataclass(frozen=True)
class Part:
    """One primitive geom in the object's body frame (MJCF type, size, pos, quat w-x-y-z)."""

    kind: str  # MJCF geom type
    size: Tuple[float, ...]
    pos: Tuple[float, float, float]
    quat: Tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    accent: bool = False


@dataclasses.dataclass(frozen=True)
class Shape:
    """An object's geometry: its parts, bounding radius about the body z axis, height."""

    category: str
    parts: Tuple[Part, ...]
    radius: float
    height: float
    # Half extents (x, y) of a rectangular footprint in the body frame; None when round.
    box_half: Tuple[float, float] = None


def _quat(yaw: float = 0.0, pitch: float = 0.0) -> Tuple[float, float, float, float]:
    """Quaternion (w, x, y, z) of a rotation about y by ``pitch``, then about z by ``yaw``."""
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    return (cy * cp, -sy * sp, cy * sp, sy * cp)


def _ring(count: int, r_bottom: float, r_top: float, z0: float, z1: float) -> List[Part]:
    """Thin boxes forming a (possibly flared) wall between two radii and heights."""
    lean = math.atan2(r_top - r_bottom, z1 - z0)
    half_len = math.hypot(r_top - r_bottom, z1 - z0) / 2
    r_mid = (r_top + r_bottom) / 2 - WALL / 2
    half_width = math.pi * max(r_top, r_bottom) / count * 1.08
    parts = []
    for i in range(count):
        yaw = 2 * math.pi * i / count
        parts.append(Part('box', (WALL / 2, half_width, half_len),
                          (r_mid * math.cos(yaw), r_mid * math.sin(yaw), (z0 + z1) / 2),
                          _quat(yaw, lean)))
    return parts


def _box(rng) -> Shape:
    sx, sy, sz = rng.uniform(0.03, 0.06), rng.uniform(0.02, 0.045), rng.uniform(0.04, 0.09)
    return Shape('box', (Part('box', (sx, sy, sz), (0, 0, sz)),), math.hypot(sx, sy), 2 * sz,
                 (sx, sy))


def _block(rng) -> Shape:
    a = rng.uniform(0.018, 0.03)
    return Shape('block', (Part('box', (a, a, a), (0, 0, a)),), math.hypot(a, a), 2 * a, (a, a))


def _can(rng) -> Shape:
    r, h = rng.uniform(0.03, 0.036), rng.uniform(0.045, 0.065)
    parts = (Part('cylinder', (r, h), (0, 0, h)),
             Part('cylinder', (r * 0.92, 0.001), (0, 0, 2 * h + 0.001), accent=True))
    return Shape('can', parts, r, 2 * h + 0.002)


def _bottle(rng) -> Shape:
    r, h = rng.uniform(0.03, 0.038), rng.uniform(0.06, 0.085)
    neck_r, neck_h, cap_h = max(0.011, 0.4 * r), 0.02, 0.007
    neck_z = 2 * h + 0.4 * r + neck_h
    parts = (Part('cylinder', (r, h), (0, 0, h)),
             Part('ellipsoid', (r, r, 0.5 * r), (0, 0, 2 * h)),
             Part('cylinder', (neck_r, neck_h), (0, 0, neck_z)),
             Part('cylinder', (neck_r * 1.15, cap_h), (0, 0, neck_z + neck_h + cap_h),
                  accent=True))
    return Shape('bottle', parts, r, neck_z + neck_h + 2 * cap_h)


def _plate(rng) -> Shape:
    r = rng.uniform(0.08, 0.11)
    parts = (Part('cylinder', (0.6 * r, 0.004), (0, 0, 0.004)),
             Part('cylinder', (r, 0.005), (0, 0, 0.013)))
    return Shape('plate', parts, r, 0.018)


def _bowl(rng) -> Shape:
    r, h = rng.uniform(0.06, 0.085), rng.uniform(0.04, 0.06)
    parts = [Part('cylinder', (0.5 * r, 0.005), (0, 0, 0.005))]
    parts += _ring(16, 0.5 * r + WALL, r, 0.004, h)
    return Shape('bowl', tuple(parts), r + WALL, h)


def _mug(rng) -> Shape:
    r, h = rng.uniform(0.035, 0.045), rng.uniform(0.08, 0.10)
    parts = [Part('cylinder', (r, 0.005), (0, 0, 0.005))]
    parts += _ring(14, r, r, 0.006, h)
    arm = h * 0.3
    parts += [Part('box', (0.005, 0.008, arm + 0.005), (r + 0.022, 0, h / 2)),
              Part('box', (0.011, 0.008, 0.005), (r + 0.011, 0, h / 2 + arm)),
              Part('box', (0.011, 0.008, 0.005), (r + 0.011, 0, h / 2 - arm))]
    return Shape('mug', tuple(parts), r + 0.03, h)


_BUILDERS: Dict[str, Callable] = {'box': _box, 'can': _can, 'bottle': _bottle,
                                  'plate': _plate, 'bowl': _bowl, 'mug': _mug,
                                  'block': _block}


def make_shape(category: str, rng: np.random.Generator) -> Shape:
    """Draw a shape of ``category`` with sizes from ``rng``."""
    if category not in _BUILDERS:
        raise ValueError(f"unknown object category '{category}' "
                         f'(known: {", ".join(CATEGORIES)})')
    return _BUILDERS[category](rng)


def tint(colour: str, rng: np.random.Generator, amount: float = 1.0) -> Tuple[float, ...]:
    """
    Draw an RGB that still looks like the named ``colour``.

    Hue moves by up to 0.008 (3 deg), saturation by -12..+8 % and brightness by -10..+8 %,
    times ``amount`` (each still nearest its own name among ALL_COLOURS); white, black and
    grey keep a low saturation and their lightness band.
    """
    h, s, v = colorsys.rgb_to_hsv(*ALL_COLOURS[colour])
    h = (h + amount * rng.uniform(-0.008, 0.008)) % 1.0
    s = min(1.0, s * (1 + amount * rng.uniform(-0.12, 0.08)))
    v = min(1.0, v * (1 + amount * rng.uniform(-0.10, 0.08)))
    if colour in ACHROMATIC:
        s, v = min(s, 0.06), float(np.clip(v, *ACHROMATIC[colour]))
    return tuple(round(c, 4) for c in colorsys.hsv_to_rgb(h, s, v))


def scale_shape(shape: Shape, factor: float) -> Shape:
    """Return the shape uniformly scaled about its body origin (bottom centre)."""
    parts = tuple(dataclasses.replace(p, size=tuple(factor * v for v in p.size),
                                      pos=tuple(factor * v for v in p.pos))
                  for p in shape.parts)
    box = None if shape.box_half is None else tuple(factor * v for v in shape.box_half)
    return Shape(shape.category, parts, factor * shape.radius, factor * shape.height, box)
