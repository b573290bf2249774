"""
Placement tasks: an instruction about a scene and its ground-truth target region.

Directions are the camera's (as a person looking at the image says them): "left of" is
the image's left projected onto the table. The region is a polygon on a horizontal
surface in the world frame; a placement succeeds when the moved object's footprint centre
ends inside it. Every task carries a free spot where the object provably fits and which
the camera sees.

Besides the single-reference relations (``RELATIONS``) the task can pose the relations the
data pipeline holds out of training (``HARD_RELATIONS``, ``trace_train.data.relations``):
'between' two reference objects and the 'closest free space' to a reference object. Their
geometry (``between_region``, ``GAP_RANGE``, ``closest_free_distances``) is defined here
and the data pipeline imports it.
"""

import dataclasses
import json
from typing import Optional, Sequence, Tuple

import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.ground_truth import circle, footprint, points_in_polygon, table_polygon
from trace_ros.sim.scene import ROBOT_BASE, Scene, SceneConfig, TABLE_TOP_Z

RELATIONS = ('left of', 'right of', 'in front of', 'behind', 'on')
HARD_RELATIONS = ('between', 'closest free space')  # held out of training
NEAR, FAR = 0.02, 0.22  # the region spans this far beyond the reference's footprint (m)
CLEARANCE = 0.01  # free space kept around the moved object at the free spot (m)
EDGE_MARGIN = 0.02  # keep free spots this far inside the table edge (m)
GAP_RANGE = (0.08, 0.45)  # free gap between two objects that 'between' accepts (m)
CLOSEST_BAND = 0.08  # how much farther than the nearest free point still counts (m)


@dataclasses.dataclass(frozen=True)
class PlacementTask:
    """
    What to move where: instruction, object names, target region in the world.

    ``references`` lists every reference object (two for 'between'); ``reference`` is the
    first of them. JSON without ``references`` (older tasks) loads as ``(reference,)``.
    """

    instruction: str
    held: str
    reference: str
    relation: str
    region: Tuple[Tuple[float, float], ...]
    region_z: float
    free_spot: Tuple[float, float, float]
    scene: SceneConfig
    frame_id: str = 'world'
    references: Tuple[str, ...] = ()

    def __post_init__(self):
        if not self.references:
            object.__setattr__(self, 'references', (self.reference,))
        elif self.references[0] != self.reference:
            raise ValueError(f'reference {self.reference!r} must be the first of the '
                             f'references {self.references}')

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
        values['references'] = tuple(values.get('references', ()))
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
    """
    Return the unit world (x, y) vectors of 'left of', 'right of', 'in front of', 'behind'.

    They are the camera's, for any camera pose: 'right of' is the image's right (optical x)
    on the table, 'behind' is away from the camera (optical z on the table). A rolled camera's
    x axis is made horizontal and perpendicular to the viewing direction first.
    """
    rotation = scene.camera.rotation
    ahead = rotation[:2, 2] / np.linalg.norm(rotation[:2, 2])
    right = rotation[:2, 0]
    if abs(rotation[2, 0]) > 1e-9:  # rolled: keep the horizontal part, square to ahead
        right = right - np.dot(right, ahead) * ahead
    right = right / np.linalg.norm(right)
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
    return clip_polygon(rect, table_polygon(scene)), TABLE_TOP_Z


def object_gap(scene: Scene, a: str, b: str) -> float:
    """Return the free distance between two objects' bounding circles (m)."""
    oa, ob = scene.by_name(a), scene.by_name(b)
    distance = np.hypot(oa.position[0] - ob.position[0], oa.position[1] - ob.position[1])
    return float(distance - oa.shape.radius - ob.shape.radius)


def spans_gap(scene: Scene, a: str, b: str) -> bool:
    """Tell whether 'between' ``a`` and ``b`` can be posed: their gap is in GAP_RANGE."""
    return GAP_RANGE[0] <= object_gap(scene, a, b) <= GAP_RANGE[1]


def between_region(scene: Scene, a: str, b: str) -> np.ndarray:
    """
    Return the table area between two objects (4 x 2 world x, y; counter-clockwise).

    A rectangle along the line joining their centres, from ``a``'s bounding circle to
    ``b``'s, reaching the smaller of their radii (clipped to 4-8 cm) to either side of that
    line. Neither the table edge nor other objects are cut out.
    """
    oa, ob = scene.by_name(a), scene.by_name(b)
    pa, pb = np.asarray(oa.position[:2]), np.asarray(ob.position[:2])
    axis = (pb - pa) / np.linalg.norm(pb - pa)
    side = np.array([-axis[1], axis[0]])
    half = float(np.clip(min(oa.shape.radius, ob.shape.radius), 0.04, 0.08))
    start, end = pa + axis * oa.shape.radius, pb - axis * ob.shape.radius
    return np.array([start - side * half, end - side * half, end + side * half,
                     start + side * half])


def closest_free_distances(center: Sequence[float], free_points: np.ndarray
                           ) -> Tuple[float, float]:
    """
    Return the distance from ``center`` to the nearest free point, and the farthest allowed.

    The 'closest free space' to an object is every free point at most CLOSEST_BAND farther
    from the object's centre than the nearest free point; what is free (an (N, 2) array of
    world x, y) the caller decides.
    """
    nearest = float(np.hypot(*(free_points - center[:2]).T).min())
    return nearest, nearest + CLOSEST_BAND


def ring_polygon(outer: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """
    Join a counter-clockwise ``outer`` polygon and a ``hole`` inside it into one polygon.

    The hole is walked clockwise and joined to the outer ring by a bridge walked both ways,
    so the even-odd test (``points_in_polygon``) sees the outer polygon minus the hole.
    """
    outer, hole = np.asarray(outer, float), np.asarray(hole, float)
    x, y = hole[:, 0], hole[:, 1]
    if np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0:
        hole = hole[::-1]
    hole = np.roll(hole, -int(np.argmin(np.linalg.norm(hole - outer[0], axis=1))), axis=0)
    return np.concatenate([outer, outer[:1], hole, hole[:1]])


def closest_free_region(scene: Scene, held: str, reference: str, step: float = 0.01
                        ) -> Optional[np.ndarray]:
    """
    Return the 'closest free space' to ``reference`` for ``held`` as one polygon, or None.

    Free points are where ``held`` fits on the table (``fits_at``, on a ``step`` grid). The
    region is the disk around the reference's centre out to the nearest free point plus
    CLOSEST_BAND, clipped to the table, minus the reference's footprint (so putting the
    object on the reference does not count); None when nothing is free.
    """
    hx, hy = np.abs(table_polygon(scene)).max(axis=0)
    xs, ys = np.meshgrid(np.arange(-hx + step / 2, hx, step), np.arange(-hy + step / 2, hy, step))
    points = np.column_stack([xs.ravel(), ys.ravel()])
    free = points[fits_at(scene, held, points)]
    if len(free) == 0:
        return None
    center = np.asarray(scene.by_name(reference).position[:2], float)
    _, farthest = closest_free_distances(center, free)
    outer = clip_polygon(circle(center, farthest, 48), table_polygon(scene))
    return ring_polygon(outer, footprint(scene, reference))


def task_region(scene: Scene, held: str, relation: str, references: Sequence[str]
                ) -> Tuple[Optional[np.ndarray], float]:
    """
    Return the region polygon and height for any relation of RELATIONS or HARD_RELATIONS.

    'between' takes two references and is ``between_region`` clipped to the table; 'closest
    free space' is ``closest_free_region`` (None when nothing is free); the others are
    ``target_region``.
    """
    count = 2 if relation == 'between' else 1
    if len(references) != count:
        raise ValueError(f"'{relation}' takes {count} reference objects, got {len(references)}")
    if relation == 'between':
        region = clip_polygon(between_region(scene, *references), table_polygon(scene))
        return region, TABLE_TOP_Z
    if relation == 'closest free space':
        return closest_free_region(scene, held, references[0]), TABLE_TOP_Z
    return target_region(scene, references[0], relation)


def fits_at(scene: Scene, held: str, points: np.ndarray, on: Optional[str] = None
            ) -> np.ndarray:
    """
    Tell whether ``held`` fits at each world (x, y) of an (N, 2) array.

    It fits inside the table by its radius plus EDGE_MARGIN, within the arm's reach, and
    CLEARANCE away from every other object's bounding circle but ``on``'s (what it is put on).
    """
    obj = scene.by_name(held)
    margin = obj.shape.radius + EDGE_MARGIN
    hx, hy = np.abs(table_polygon(scene)).max(axis=0)
    ok = (np.abs(points[:, 0]) <= hx - margin) & (np.abs(points[:, 1]) <= hy - margin)
    reach = np.hypot(points[:, 0] - ROBOT_BASE[0], points[:, 1] - ROBOT_BASE[1])
    ok &= (reach >= panda.MIN_REACH + obj.shape.radius) & (reach <= panda.REACH)
    for other in scene.objects:
        if other.name in (obj.name, on):
            continue
        gap = np.hypot(points[:, 0] - other.position[0], points[:, 1] - other.position[1])
        ok &= gap >= obj.shape.radius + other.shape.radius + CLEARANCE
    return ok


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

    ``fits_at`` says where it fits (``on``: the object it is put on). With
    ``camera_position``, only spots the camera sees (no object in the way) count.
    """
    if len(region) < 3:
        return None
    lo, hi = region.min(axis=0), region.max(axis=0)
    xs, ys = np.meshgrid(np.arange(lo[0], hi[0], step), np.arange(lo[1], hi[1], step))
    points = np.column_stack([xs.ravel(), ys.ravel()])
    ok = points_in_polygon(points, region) & fits_at(scene, held, points, on)
    if camera_position is not None:
        ok &= _visible(scene, points, z, np.asarray(camera_position, float))
    if not ok.any():
        return None
    candidates = points[ok]
    best = np.argmin(np.linalg.norm(candidates - region.mean(axis=0), axis=1))
    return float(candidates[best, 0]), float(candidates[best, 1])


PHRASES = {'left of': 'to the left of {a}', 'right of': 'to the right of {a}',
           'between': 'between {a} and {b}',
           'closest free space': 'in the free space closest to {a}'}  # else '<relation> {a}'


def relation_phrase(relation: str, reference_labels: Sequence[str]) -> str:
    """Phrase where to put something, e.g. 'between the red bowl and the blue mug'."""
    labels = dict(zip('ab', (f'the {label}' for label in reference_labels)))
    return PHRASES.get(relation, relation + ' {a}').format(**labels)


def instruction_text(held_label: str, relation: str, *reference_labels: str) -> str:
    """Phrase the instruction as a person would give it (two references for 'between')."""
    return f'Place the {held_label} {relation_phrase(relation, reference_labels)}.'


def make_task(scene: Scene, index: int = 0,
              relations: Sequence[str] = RELATIONS) -> PlacementTask:
    """
    Draw a feasible task for ``scene``; (scene seed, index, relations) determines it.

    Every (held, references, relation) combination with a relation of ``relations`` (any
    of RELATIONS and HARD_RELATIONS) is equally likely; those without a free spot the
    camera sees are skipped. 'between' takes the pairs ``spans_gap`` accepts.
    """
    unknown = set(relations) - set(RELATIONS + HARD_RELATIONS)
    if unknown or not relations:
        raise ValueError(f'relations must be a non-empty subset of {RELATIONS + HARD_RELATIONS}'
                         f', got {tuple(relations)}')
    rng = np.random.default_rng([scene.config.seed, index])
    objects = scene.objects
    combos = [(h.name, (r.name,), rel) for h in objects for r in objects
              for rel in relations if h is not r and rel != 'between']
    if 'between' in relations:
        combos += [(h.name, (a.name, b.name), 'between') for h in objects
                   for i, a in enumerate(objects) for b in objects[i + 1:]
                   if h is not a and h is not b and spans_gap(scene, a.name, b.name)]
    for i in rng.permutation(len(combos)):
        held, references, relation = combos[i]
        if relation == 'on':
            ref = scene.by_name(references[0])
            fits = scene.by_name(held).shape.radius < 0.6 * ref.shape.radius
            if ref.category != 'plate' or not fits:
                continue
        region, z = task_region(scene, held, relation, references)
        if region is None:
            continue
        on = references[0] if relation == 'on' else None
        spot = find_free_spot(scene, held, region, on, z=z,
                              camera_position=scene.camera.position)
        if spot is None:
            continue
        labels = [scene.by_name(name).label for name in references]
        return PlacementTask(
            instruction_text(scene.by_name(held).label, relation, *labels),
            held, references[0], relation, tuple(tuple(float(v) for v in p) for p in region),
            float(z), (spot[0], spot[1], float(z)), scene.config, references=references)
    raise RuntimeError(f'scene {scene.config.seed} has no feasible placement task')
