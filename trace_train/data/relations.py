"""
The placement relations of the dataset and the 3D target region each one defines.

Two TRACE goal subtypes: object reference (a side of an object, next to, near, between two
objects, on a plate or a box) and free space (the empty table, the free space closest to an
object, away from everything, a side of the table). Every table region is free space where
the held object fits: inside the table by its radius plus a margin, within the arm's reach,
and outside every other object's footprint grown by the held object's radius plus a
clearance (a nominal radius when the instruction names no held object). Directions are the
camera's, as in ``trace_ros.sim.task``. ``HARD_RELATIONS`` are held out of training; their
geometry (``between_region``, ``GAP_RANGE``, ``closest_free_distances``) is
``trace_ros.sim.task``'s, shared with the simulated closed-loop tasks.
"""

from typing import Dict, List, Optional, Tuple

import numpy as np
from trace_ros.core.answer_format import GOAL_FREE_SPACE, GOAL_OBJECT_REFERENCE
from trace_ros.sim import panda
from trace_ros.sim.scene import ROBOT_BASE, Scene, TABLE_TOP_Z
from trace_ros.sim.task import (between_region, closest_free_distances, directions,
                                HARD_RELATIONS, object_gap, spans_gap, target_region)
from trace_train.data.regions import as_polygon, DECIMALS, inflated_footprint, Region

# relation -> (goal subtype, number of reference objects)
RELATIONS: Dict[str, Tuple[str, int]] = {
    'left of': (GOAL_OBJECT_REFERENCE, 1), 'right of': (GOAL_OBJECT_REFERENCE, 1),
    'in front of': (GOAL_OBJECT_REFERENCE, 1), 'behind': (GOAL_OBJECT_REFERENCE, 1),
    'next to': (GOAL_OBJECT_REFERENCE, 1), 'near': (GOAL_OBJECT_REFERENCE, 1),
    'between': (GOAL_OBJECT_REFERENCE, 2), 'on': (GOAL_OBJECT_REFERENCE, 1),
    'empty area': (GOAL_FREE_SPACE, 0), 'closest free space': (GOAL_FREE_SPACE, 1),
    'away from objects': (GOAL_FREE_SPACE, 0), 'left side': (GOAL_FREE_SPACE, 0),
    'right side': (GOAL_FREE_SPACE, 0), 'front edge': (GOAL_FREE_SPACE, 0),
}
TRAIN_RELATIONS = tuple(r for r in RELATIONS if r not in HARD_RELATIONS)
DIRECTIONS = ('left of', 'right of', 'in front of', 'behind')
SURFACES = ('plate', 'box', 'block')  # what 'on' accepts

NOMINAL_RADIUS = 0.03  # m, the held object's radius when the instruction names none
CLEARANCE = 0.01  # m, kept free around the held object
EDGE_MARGIN = 0.02  # m, kept inside the table edge
NEXT_TO_FAR, NEAR_FAR = 0.16, 0.15  # m beyond the reference's footprint
MIN_OPEN = 0.10  # m, the clearance 'away from objects' needs somewhere...
AWAY_SHARE, AWAY_CAP = 0.5, 0.20  # ...and it asks for this share of the best one, capped (m)
SIDE_SHARE, FRONT_SHARE = 0.35, 0.3  # share of the table's width (depth) a side (front) is


class NoRegion(ValueError):
    """The relation cannot be posed with these objects; the message says why."""


def goal_subtype(relation: str) -> str:
    """Return 'object reference' or 'free space'."""
    return RELATIONS[relation][0]


def held_radius(scene: Scene, held: Optional[str]) -> float:
    """Return the footprint radius the region must fit (nominal without a held object)."""
    return scene.by_name(held).shape.radius if held else NOMINAL_RADIUS


def fits_on(scene: Scene, held: Optional[str], surface: str) -> bool:
    """Tell whether ``held`` (or nothing) fits inside the 'on' region of ``surface``."""
    ref = scene.by_name(surface)
    if ref.category not in SURFACES:
        return False
    if held is None:
        return True
    limit = 0.6 * ref.shape.radius if ref.shape.box_half is None else 0.8 * min(
        ref.shape.box_half)
    return scene.by_name(held).shape.radius < limit


def candidates(scene: Scene, relation: str, visible: List[str]) -> List[Tuple[str, ...]]:
    """List the reference tuples the relation can take among the visible objects."""
    count = RELATIONS[relation][1]
    if count == 0:
        return [()]
    if relation == 'on':
        return [(n,) for n in visible if scene.by_name(n).category in SURFACES]
    if count == 1:
        return [(n,) for n in visible]
    pairs = []
    for i, a in enumerate(visible):
        for b in visible[i + 1:]:
            if spans_gap(scene, a, b):
                pairs.append((a, b))
    return pairs


def free_table(scene: Scene, held: Optional[str], margin: Optional[float] = None) -> Region:
    """Return the table surface within reach where ``held`` fits, clear of other objects."""
    radius = held_radius(scene, held)
    margin = radius + CLEARANCE if margin is None else margin
    hx, hy = scene.table_half
    hx, hy = hx - radius - EDGE_MARGIN, hy - radius - EDGE_MARGIN
    table = as_polygon([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    reach = (ROBOT_BASE[0], ROBOT_BASE[1], panda.MIN_REACH + radius, panda.REACH)
    exclude = tuple(inflated_footprint(scene, o.name, margin) for o in scene.objects
                    if o.name != held)
    return _with(Region(TABLE_TOP_Z, (table,), (), exclude), annuli=[reach])


def _with(region: Region, within=(), any_of=(), annuli=()) -> Region:
    annuli = tuple(tuple(round(float(v), DECIMALS) for v in a) for a in annuli)
    return Region(region.z, region.within + tuple(within), region.any_of + tuple(any_of),
                  region.exclude, region.annuli + annuli)


def _strip(scene: Scene, relation: str) -> Tuple[Tuple[float, float], ...]:
    """Return the left or right side, or the front (camera) edge, of the table."""
    axes = directions(scene)
    axis = {'left side': axes['left of'], 'right side': axes['right of'],
            'front edge': axes['in front of']}[relation]
    share = FRONT_SHARE if relation == 'front edge' else SIDE_SHARE
    hx, hy = scene.table_half
    corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    reach = corners @ axis
    lo, hi = reach.max() - share * (reach.max() - reach.min()), reach.max() + 1.0
    side = np.array([-axis[1], axis[0]])
    return as_polygon([axis * lo - side * 2, axis * hi - side * 2, axis * hi + side * 2,
                       axis * lo + side * 2])


def surface_region(scene: Scene, relation: str) -> Region:
    """Return the table, or its side, that a free-space relation without an object names."""
    hx, hy = scene.table_half
    table = as_polygon([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    if relation in ('left side', 'right side', 'front edge'):
        return Region(TABLE_TOP_Z, (table, _strip(scene, relation)))
    return Region(TABLE_TOP_Z, (table,))


def placement_region(scene: Scene, relation: str, references: Tuple[str, ...],
                     held: Optional[str] = None) -> Tuple[Region, Dict[str, float]]:
    """
    Return the target region of an instruction and the numbers its CoR quotes.

    Raises NoRegion when the relation cannot be posed (say, nothing fits on the plate).
    """
    if relation not in RELATIONS:
        raise ValueError(f'unknown relation {relation!r} (known: {", ".join(RELATIONS)})')
    if len(references) != RELATIONS[relation][1]:
        raise ValueError(f'{relation!r} takes {RELATIONS[relation][1]} reference objects')
    if held is not None and held in references:
        raise ValueError('the held object cannot be its own reference')
    if relation == 'on':
        if not fits_on(scene, held, references[0]):
            raise NoRegion(f'the held object does not fit on the {references[0]}')
        polygon, z = target_region(scene, references[0], 'on')
        return Region(z, (as_polygon(polygon),)), {'height': z - TABLE_TOP_Z}
    free = free_table(scene, held)
    ref = scene.by_name(references[0]) if references else None
    facts = {'clearance': held_radius(scene, held) + CLEARANCE}
    if relation in DIRECTIONS:
        polygon, _ = target_region(scene, ref.name, relation)
        return _with(free, any_of=[as_polygon(polygon)]), facts
    if relation == 'next to':
        sides = [as_polygon(target_region(scene, ref.name, r, far=NEXT_TO_FAR)[0])
                 for r in ('left of', 'right of')]
        return _with(free, any_of=sides), {**facts, 'far': NEXT_TO_FAR}
    if relation == 'near':
        ring = (ref.position[0], ref.position[1], 0.0, ref.shape.radius + NEAR_FAR)
        return _with(free, annuli=[ring]), {**facts, 'far': NEAR_FAR}
    if relation == 'between':
        gap = object_gap(scene, *references)
        rectangle = as_polygon(between_region(scene, *references))
        return _with(free, any_of=[rectangle]), {**facts, 'gap': gap}
    if relation in ('left side', 'right side', 'front edge'):
        return _with(free, within=[_strip(scene, relation)]), facts
    grid = free.grid()
    if len(grid) == 0:
        raise NoRegion('no free table surface')
    if relation == 'closest free space':
        nearest, farthest = closest_free_distances(ref.position[:2], grid)
        ring = (ref.position[0], ref.position[1], 0.0, farthest)
        return _with(free, annuli=[ring]), {**facts, 'nearest': nearest, 'farthest': farthest}
    if relation == 'away from objects':
        others = [o for o in scene.objects if o.name != held]
        if not others:
            raise NoRegion('no other objects to keep away from')
        gaps = np.min([np.hypot(*(grid - o.position[:2]).T) - o.shape.radius
                       for o in others], axis=0)
        best = float(gaps.max())
        if best < MIN_OPEN:
            raise NoRegion(f'no open area: at most {100 * best:.0f} cm from the objects')
        margin = max(min(AWAY_SHARE * best, AWAY_CAP), facts['clearance'])
        return free_table(scene, held, margin), {**facts, 'clearance': margin}
    return free, facts  # 'empty area'
