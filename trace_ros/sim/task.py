"""
Placement tasks: an instruction about a scene and its ground-truth target region.

Directions are the camera's (as a person looking at the image says them): "left of" is
the image's left projected onto the table. The region is a polygon on a horizontal
surface in the world frame; a placement succeeds when the moved object's footprint centre
ends inside it. Every task carries a free spot where the object provably fits and which
the camera sees.
"""

import dataclasses
import json
from typing import Optional, Sequence, Tuple

import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.ground_truth import circle, footprint, points_in_polygon, table_polygon
from trace_ros.sim.scene import ROBOT_BASE, Scene, SceneConfig, TABLE_TOP_Z

RELATIONS = ('left of', 'right of', 'in front of', 'behind', 'on')
NEAR, FAR = 0.02, 0.22  # the region spans this far beyond the reference's footprint (m)
CLEARANCE = 0.01  # free space kept around the moved object at the free spot (m)
EDGE_MARGIN = 0.02  # keep free spots this far inside the table edge (m)


@dataclasses.dataclass(frozen=True)
class PlacementTask:
    """What to move where: instruction, object names, target region in the world."""

    instruction: str
    held: str
    reference: str
    relation: str
    region: Tuple[Tuple[float, float], ...]
    region_z: float
    free_spot: Tuple[float, float, float]
    scene: SceneConfig
    frame_id: str = 'world'

    def contains(self, xy: Sequence[float]) -> bool:
        """Whether a world (x, y) lies inside the target region."""
        return bool(points_in_polygon(np.asarray(xy[:2]), np.asarray(self.region))[0])

    def to_json(self) -> str:
        """Serialize (the executor rebuilds the scene from ``scene``)."""
        values = dataclasses.asdict(self)
        values['scene'] = self.scene.to_dict()
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> 'PlacementTask':
        """Inverse of to_json."""
        values = json.loads(text)
        values['scene'] = SceneConfig.from_dict(values['scene'])
        values['region'] = tuple(tuple(p) for p in values['region'])
        values['free_spot'] = tuple(values['free_spot'])
        return cls(**values)


def clip_polygon(polygon: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: ``polygon`` clipped by the convex, counter-clockwise ``clip``."""
    out = [tuple(p) for p in polygon]
    for a, b in zip(clip, np.roll(clip, -1, axis=0)):
        def inside(p, a=a, b=b):
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0
        points, out = out, []
        for p, q in zip(points, points[1:] + points[:1]):
            if inside(q):
                if not inside(p):
                    out.append(_intersect(p, q, a, b))
                out.append(q)
            elif inside(p):
                out.append(_intersect(p, q, a, b))
        if not out:
            break
    return np.array(out, float).reshape(-1, 2)


def _intersect(p, q, a, b):
    d1, d2 = np.subtract(q, p), np.subtract(b, a)
    t = ((a[0] - p[0]) * d2[1] - (a[1] - p[1]) * d2[0]) / (d1[0] * d2[1] - d1[1] * d2[0])
    return (p[0] + t * d1[0], p[1] + t * d1[1])


def directions(scene: Scene):
    """Return the unit world (x, y) vectors of 'left of', 'right of', 'in front of', 'behind'."""
    rotation = scene.camera.rotation
    right = rotation[:2, 0] / np.linalg.norm(rotation[:2, 0])
    ahead = rotation[:2, 2] / np.linalg.norm(rotation[:2, 2])
    return {'left of': -right, 'right of': right, 'in front of': -ahead, 'behind': ahead}


def target_region(scene: Scene, reference: str, relation: str, near: float = NEAR,
                  far: float = FAR) -> Tuple[np.ndarray, float]:
    """
    Return the region polygon (world x, y; counter-clockwise) for a relation, and its height.

    Directions span ``near`` to ``far`` beyond the reference's footprint; 'on' is the inner
    80 % of a plate or of the top face of a box or block.
    """
    ref = scene.by_name(reference)
    center, radius = np.asarray(ref.position[:2]), ref.shape.radius
    if relation == 'on':
        top = TABLE_TOP_Z + ref.shape.height
        if ref.category == 'plate':
            return circle(center, 0.8 * radius), top
        if ref.shape.box_half is not None:
            return center + 0.8 * (footprint(scene, ref.name) - center), top
        raise ValueError(f"'on' needs a plate, box or block as reference, got a {ref.category}")
    direction = directions(scene).get(relation)
    if direction is None:
        raise ValueError(f"unknown relation '{relation}' (known: {', '.join(RELATIONS)})")
    side = np.array([-direction[1], direction[0]])
    half_width = max(radius, 0.08)
    near, far = center + direction * (radius + near), center + direction * (radius + far)
    rect = np.array([near - side * half_width, far - side * half_width,
                     far + side * half_width, near + side * half_width])
    (ax, ay), (bx, by) = rect[1] - rect[0], rect[2] - rect[1]
    if ax * by - ay * bx < 0:
        rect = rect[::-1]
    return clip_polygon(rect, table_polygon()), TABLE_TOP_Z


def _visible(scene: Scene, points: np.ndarray, z: float, camera: np.ndarray) -> np.ndarray:
    """Whether the sight line from the camera to each (x, y, z) misses every object."""
    t = np.linspace(0.0, 0.97, 40)[None, :, None]
    targets = np.column_stack([points, np.full(len(points), z)])[:, None, :]
    line = camera + t * (targets - camera)  # N x 40 x 3
    clear = np.ones(len(points), bool)
    for obj in scene.objects:
        inside = (np.hypot(line[..., 0] - obj.position[0], line[..., 1] - obj.position[1])
                  < obj.shape.radius) & (line[..., 2] < obj.position[2] + obj.shape.height)
        clear &= ~inside.any(axis=1)
    return clear


def find_free_spot(scene: Scene, held: str, region: np.ndarray, on: Optional[str] = None,
                   step: float = 0.01, z: float = TABLE_TOP_Z,
                   camera_position: Optional[Sequence[float]] = None
                   ) -> Optional[Tuple[float, float]]:
    """
    Return the free (x, y) in ``region`` nearest its centroid where ``held`` fits, or None.

    With ``camera_position``, only spots the camera sees (no object in the way) count.
    """
    if len(region) < 3:
        return None
    obj = scene.by_name(held)
    lo, hi = region.min(axis=0), region.max(axis=0)
    xs, ys = np.meshgrid(np.arange(lo[0], hi[0], step), np.arange(lo[1], hi[1], step))
    points = np.column_stack([xs.ravel(), ys.ravel()])
    ok = points_in_polygon(points, region)
    margin = obj.shape.radius + EDGE_MARGIN
    hx, hy = np.abs(table_polygon()).max(axis=0)
    ok &= (np.abs(points[:, 0]) <= hx - margin) & (np.abs(points[:, 1]) <= hy - margin)
    reach = np.hypot(points[:, 0] - ROBOT_BASE[0], points[:, 1] - ROBOT_BASE[1])
    ok &= (reach >= panda.MIN_REACH + obj.shape.radius) & (reach <= panda.REACH)
    for other in scene.objects:
        if other.name in (obj.name, on):
            continue
        gap = np.hypot(points[:, 0] - other.position[0], points[:, 1] - other.position[1])
        ok &= gap >= obj.shape.radius + other.shape.radius + CLEARANCE
    if camera_position is not None:
        ok &= _visible(scene, points, z, np.asarray(camera_position, float))
    if not ok.any():
        return None
    candidates = points[ok]
    best = np.argmin(np.linalg.norm(candidates - region.mean(axis=0), axis=1))
    return float(candidates[best, 0]), float(candidates[best, 1])


def instruction_text(held_label: str, relation: str, reference_label: str) -> str:
    """Phrase the instruction as a person would give it."""
    relation_text = {'left of': 'to the left of', 'right of': 'to the right of'}.get(
        relation, relation)
    return f'Place the {held_label} {relation_text} the {reference_label}.'


def make_task(scene: Scene, index: int = 0) -> PlacementTask:
    """Draw a feasible task for ``scene``; (scene seed, index) determines it."""
    rng = np.random.default_rng([scene.config.seed, index])
    combos = [(h.name, r.name, rel) for h in scene.objects for r in scene.objects
              for rel in RELATIONS if h is not r]
    for i in rng.permutation(len(combos)):
        held, reference, relation = combos[i]
        if relation == 'on':
            ref = scene.by_name(reference)
            fits = scene.by_name(held).shape.radius < 0.6 * ref.shape.radius
            if ref.category != 'plate' or not fits:
                continue
        region, z = target_region(scene, reference, relation)
        spot = find_free_spot(scene, held, region, reference if relation == 'on' else None,
                              z=z, camera_position=scene.camera.position)
        if spot is None:
            continue
        return PlacementTask(
            instruction_text(scene.by_name(held).label, relation, scene.by_name(reference).label),
            held, reference, relation, tuple(tuple(float(v) for v in p) for p in region),
            float(z), (spot[0], spot[1], float(z)), scene.config)
    raise RuntimeError(f'scene {scene.config.seed} has no feasible placement task')
