"""
One scene to dataset samples: render it, pose instructions, check them, write the answers.

``make_scene_samples(config, index)`` draws scene ``index`` of a split from the seed alone,
renders RGB, depth and segmentation once, then poses ``questions_per_scene`` placement
instructions. Each draw (relation, references, held object, phrasing) is checked and
redrawn when it fails: the references and the held object must be visible, the region
large enough, mostly visible (not hidden behind objects or outside the image) and its
visible part big enough to hold the answer points after an erosion that keeps them clear of
the mask's edge. Answer points are pixel centres of that eroded mask, so they lie in the
mask by construction. Reference locations are visible-pixel centroids snapped onto the
object. Nothing is written to disk here.
"""

import collections
import dataclasses
import math
from typing import Dict, List, Optional, Tuple
import zlib

import numpy as np
from trace_ros.core.answer_format import format_points
from trace_ros.sim.ground_truth import plane_hits
from trace_ros.sim.randomization import draw_world, view_of, WorldRandomization
from trace_ros.sim.render import Frame, RenderSettings, SceneRenderer
from trace_ros.sim.scene import (CameraConfig, FIRST_OBJECT_LABEL, generate_scene, Scene,
                                 SceneConfig)
from trace_ros.sim.sensor import apply_sensor
from trace_train.data import language
from trace_train.data.regions import (erode, GRID_STEP, normalized_box, Region,
                                      visible_fraction, visible_mask)
from trace_train.data.relations import (candidates, fits_on, goal_subtype, NoRegion,
                                        placement_region, RELATIONS, surface_region,
                                        TRAIN_RELATIONS)

DEFAULT_CAMERA = CameraConfig()
RELATION_TRIES = 6  # draws of one relation before a question tries another
_TAN_HALF_HFOV = math.tan(math.radians(DEFAULT_CAMERA.fovy_deg) / 2) * (
    DEFAULT_CAMERA.width / DEFAULT_CAMERA.height)


POINT_ORDERS = ('random', 'interior')
WORLDS = ('default', 'random')
VIEW_REDRAWS = 3  # random worlds: views drawn before a scene with few visible objects is kept


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """
    Everything a split is generated from; the same config gives the same samples.

    ``fovy_deg`` 0 keeps the default camera's horizontal field of view at any aspect ratio.
    Pixel thresholds are fractions of the image area.
    """

    seed: int = 0
    split: str = 'train'
    width: int = 640
    height: int = 480
    fovy_deg: float = 0.0
    camera_jitter: float = 0.05  # m, uniform per axis around the default camera position
    look_jitter: float = 0.03  # m, the same for its look-at point
    relations: Tuple[str, ...] = TRAIN_RELATIONS
    questions_per_scene: int = 4
    locate_per_scene: int = 0
    held_probability: float = 0.5
    min_points: int = 3
    max_points: int = 8
    max_attempts: int = 25
    min_visible_fraction: float = 0.5
    min_region_pixels: float = 0.003
    min_object_pixels: float = 0.001
    min_region_area: float = 0.002  # m^2
    shadows: bool = True
    num_objects: int = 0
    point_order: str = 'random'  # 'interior': points near the mask's middle, step 3 its centre
    world: str = 'default'  # 'random': randomized worlds (randomization.draw_world), any size
    max_side: int = 640  # random worlds: rendered and stored at most this large

    def __post_init__(self):
        unknown = set(self.relations) - set(RELATIONS)
        if unknown or not self.relations:
            raise ValueError(f'relations must be a non-empty subset of {tuple(RELATIONS)}')
        if not 1 <= self.min_points <= self.max_points:
            raise ValueError('need 1 <= min_points <= max_points')
        if self.point_order not in POINT_ORDERS:
            raise ValueError(f'point_order must be one of {POINT_ORDERS}')
        if self.world not in WORLDS:
            raise ValueError(f'world must be one of {WORLDS}')

    @property
    def decimals(self) -> int:
        """Return the decimals that keep written points in the pixel they were drawn from."""
        side = self.max_side if self.world == 'random' else max(self.width, self.height)
        return 3 if side <= 800 else 4

    def to_dict(self) -> Dict:
        """Plain-data form (JSON-serializable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict) -> 'DataConfig':
        """Inverse of to_dict."""
        return cls(**{**values, 'relations': tuple(values['relations'])})


@dataclasses.dataclass
class Sample:
    """One question: its JSON record and its HxW bool target mask."""

    record: Dict
    mask: np.ndarray


@dataclasses.dataclass
class SceneSamples:
    """The scene, its render and its samples; ``counters`` count draws and rejections."""

    index: int
    scene: Optional[Scene]
    frame: Optional[Frame]
    samples: List[Sample]
    counters: collections.Counter


def scene_seed(config: DataConfig, index: int) -> int:
    """Return the seed of scene ``index`` of the config's split (splits never share scenes)."""
    split = zlib.crc32(config.split.encode())
    return int(np.random.SeedSequence([config.seed, split, index]).generate_state(1)[0])


def scene_config(config: DataConfig, index: int, view: int = 0) -> SceneConfig:
    """
    Return the scene configuration, its camera jittered from the same seed.

    Random worlds come from ``draw_world`` (``view`` redraws their camera); ``--size`` is
    not used for them.
    """
    seed = scene_seed(config, index)
    if config.world == 'random':
        return draw_world(seed, WorldRandomization(max_side=config.max_side), view)
    rng = np.random.default_rng([seed, 7])
    fovy = config.fovy_deg or math.degrees(
        2 * math.atan(_TAN_HALF_HFOV * config.height / config.width))
    position = np.add(DEFAULT_CAMERA.position, rng.uniform(-1, 1, 3) * config.camera_jitter)
    look_at = np.add(DEFAULT_CAMERA.look_at, rng.uniform(-1, 1, 3) * config.look_jitter)
    camera = CameraConfig(config.width, config.height, round(fovy, 4),
                          tuple(round(float(v), 4) for v in position),
                          tuple(round(float(v), 4) for v in look_at))
    return SceneConfig(seed=seed, num_objects=config.num_objects, camera=camera)


def pixel_point(pixel: Tuple[int, int], width: int, height: int,
                decimals: int) -> Tuple[float, float]:
    """Return the normalized (x, y) of a pixel (row, col) centre, rounded as written."""
    row, col = pixel
    return (round((col + 0.5) / width, decimals), round((row + 0.5) / height, decimals))


def object_point(mask: np.ndarray) -> Tuple[int, int]:
    """Return the (row, col) of the mask pixel nearest its centroid (on the mask)."""
    rows, cols = np.nonzero(mask)
    best = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return int(rows[best]), int(cols[best])


def interior_pixels(mask: np.ndarray, count: int) -> np.ndarray:
    """
    Return ``count`` (row, col) near the middle of the mask that follow from the mask alone.

    A pixel's depth is the number of erosions it survives. The first pixel is the most interior
    one (of the deepest, the nearest to their centroid); the others follow in farthest-point
    order among the pixels at least half as deep (all pixels if fewer than ``count`` are), so
    every point keeps away from the mask's edges. Ties go to the first in row-major order.
    """
    depth = np.zeros(mask.shape, int)
    core = mask
    while core.any():
        depth += core
        core = erode(core, 1)
    rows_all, cols_all = np.nonzero(mask)
    pixels = np.column_stack([rows_all, cols_all]).astype(float)
    deepest = depth[rows_all, cols_all] == depth.max()
    centre = pixels[deepest].mean(0)
    chosen = [int(np.argmin(np.where(deepest, ((pixels - centre) ** 2).sum(1), np.inf)))]
    deep = depth[rows_all, cols_all] >= math.ceil(depth.max() / 2)
    pool = deep if deep.sum() >= count else np.ones(len(pixels), bool)
    nearest = np.where(pool, ((pixels - pixels[chosen[0]]) ** 2).sum(1), -1.0)
    while len(chosen) < count:
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((pixels - pixels[chosen[-1]]) ** 2).sum(1))
    return np.column_stack([rows_all[chosen], cols_all[chosen]])


def sample_pixels(mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``count`` (row, col) of the mask, spread apart where the mask allows it."""
    rows, cols = np.nonzero(mask)
    order = rng.permutation(len(rows))
    spacing = 0.5 * math.sqrt(len(rows) / count)
    chosen: List[int] = []
    for i in order[:4000]:
        if all((rows[i] - rows[j]) ** 2 + (cols[i] - cols[j]) ** 2 >= spacing ** 2
               for j in chosen):
            chosen.append(i)
            if len(chosen) == count:
                break
    chosen += [i for i in order[:count * 2] if i not in chosen][:count - len(chosen)]
    return np.column_stack([rows[chosen], cols[chosen]])


class _Context:
    """What the draws of one scene share: the render, visible objects, their locations."""

    def __init__(self, config: DataConfig, scene: Scene, frame: Frame):
        self.config, self.scene, self.frame = config, scene, frame
        self.camera = scene.camera
        height, width = frame.labels.shape
        self.size = (width, height)
        counts = np.bincount(frame.labels.ravel(),
                             minlength=FIRST_OBJECT_LABEL + len(scene.objects))
        least = config.min_object_pixels * width * height
        self.visible = [o.name for i, o in enumerate(scene.objects)
                        if counts[FIRST_OBJECT_LABEL + i] >= least]
        self.pixels = {n: object_point(frame.labels == scene.label_of(n)) for n in self.visible}
        self.erosion = max(1, round(2 * width / 640))
        self._hits, self._surfaces = {}, {}

    def point(self, name: str) -> Tuple[float, float]:
        """Return the normalized image location of a visible object."""
        return pixel_point(self.pixels[name], *self.size, self.config.decimals)

    def mask(self, region: Region) -> np.ndarray:
        """Return the region's visible pixels (plane rays cached per height)."""
        if region.z not in self._hits:
            self._hits[region.z] = plane_hits(self.camera, region.z)
        return visible_mask(self.camera, region, self.frame.depth, hits=self._hits[region.z])

    def surface_point(self, relation: str) -> Tuple[float, float]:
        """Return the normalized location of the visible table (or side) a relation names."""
        if relation not in self._surfaces:
            mask = self.mask(surface_region(self.scene, relation))
            self._surfaces[relation] = pixel_point(object_point(mask), *self.size,
                                                   self.config.decimals)
        return self._surfaces[relation]


def _draw(ctx: _Context, relation: str, rng: np.random.Generator, posed: set) -> Sample:
    """Draw one checked placement sample; raise NoRegion with the rejection reason."""
    config, scene = ctx.config, ctx.scene
    options = candidates(scene, relation, ctx.visible)
    if not options:
        raise NoRegion('no_reference')
    references = options[rng.integers(len(options))]
    held = None
    if rng.random() < config.held_probability:
        pool = [n for n in ctx.visible if n not in references
                and (relation != 'on' or fits_on(scene, n, references[0]))]
        held = str(rng.choice(pool)) if pool else None
    if (relation, references, held) in posed:
        raise NoRegion('duplicate')
    try:
        region, facts = placement_region(scene, relation, references, held)
    except NoRegion:
        raise NoRegion('infeasible') from None
    grid = region.grid()
    area = len(grid) * GRID_STEP ** 2
    if area < config.min_region_area:
        raise NoRegion('small_region')
    seen = visible_fraction(ctx.camera, region, ctx.frame.depth, grid)
    if seen < config.min_visible_fraction:
        raise NoRegion('hidden_region')
    mask = ctx.mask(region)
    width, height = ctx.size
    eroded = erode(mask, ctx.erosion)
    count = int(rng.integers(config.min_points, config.max_points + 1))
    if mask.sum() < config.min_region_pixels * width * height or eroded.sum() < count:
        raise NoRegion('few_pixels')
    if config.point_order == 'interior':
        pixels = interior_pixels(eroded, count)
    else:
        pixels = sample_pixels(eroded, count, rng)
    points = np.array([pixel_point(p, width, height, config.decimals) for p in pixels])
    box = normalized_box(mask)
    box = (math.floor(box[0] * 100) / 100, math.floor(box[1] * 100) / 100,
           math.ceil(box[2] * 100) / 100, math.ceil(box[3] * 100) / 100)
    reference_points = [ctx.point(r) for r in references]
    cor = language.chain_of_reasoning(scene, relation, references, held, facts,
                                      reference_points, ctx.surface_point(relation), box,
                                      points, config.point_order)
    posed.add((relation, references, held))
    record = {
        'kind': 'placement', 'relation': relation, 'goal_subtype': goal_subtype(relation),
        'instruction': language.instruction(scene, relation, references, held, rng),
        'held': held, 'references': list(references),
        'reference_points': [list(p) for p in reference_points],
        'points': points.tolist(), 'answer': format_points(points, config.decimals),
        'cor': cor, 'target_box': list(box), 'mask_pixels': int(mask.sum()),
        'region_area': round(area, 4), 'visible_fraction': round(seen, 3),
        'region': region.to_dict(), 'facts': {k: round(v, 4) for k, v in facts.items()}}
    return Sample(record, mask)


def _locate(ctx: _Context, name: str, rng: np.random.Generator) -> Sample:
    point = ctx.point(name)
    answer = language.locate_answer(ctx.scene, name, point, ctx.config.decimals)
    record = {'kind': 'locate', 'relation': 'locate', 'goal_subtype': '',
              'instruction': language.locate_question(ctx.scene, name, rng), 'held': None,
              'references': [name], 'reference_points': [list(point)], 'points': [list(point)],
              'answer': answer, 'cor': answer}
    return Sample(record, ctx.frame.labels == ctx.scene.label_of(name))


def render(scene: Scene, shadows: bool = True) -> Frame:
    """
    Render RGB, depth and segmentation of a freshly built scene.

    A randomized world's shadows and sensor effects (RGB only) are its own.
    """
    model = scene.build()
    data = scene.make_data(model)
    world = scene.config.world
    shadows = shadows and (world is None or world.shadows)
    with SceneRenderer(scene, model, RenderSettings(shadows=shadows)) as renderer:
        frame = renderer.render(data, segmentation=True)
    if world is not None:
        frame.rgb = apply_sensor(frame.rgb, world.sensor, scene.config.seed)
    return frame


def _render_scene(config: DataConfig, index: int, counters: collections.Counter):
    """Build and render scene ``index``; a random world's view is redrawn if few objects show."""
    for view in range(VIEW_REDRAWS if config.world == 'random' else 1):
        scene = generate_scene(scene_config(config, index, view))
        frame = render(scene, config.shadows)
        ctx = _Context(config, scene, frame)
        if len(ctx.visible) >= math.ceil(0.5 * len(scene.objects)):
            break
        counters['view_redrawn'] += 1
    return scene, frame, ctx


def make_scene_samples(config: DataConfig, index: int) -> SceneSamples:
    """Render scene ``index`` and pose its checked samples (module docstring)."""
    counters = collections.Counter(scenes=1)
    try:
        scene, frame, ctx = _render_scene(config, index, counters)
    except RuntimeError:
        counters['scene_failed'] += 1
        return SceneSamples(index, None, None, [], counters)
    rng = np.random.default_rng([scene.config.seed, 11])
    samples, posed = [], set()
    for _ in range(config.questions_per_scene):
        tries = RELATION_TRIES
        for _ in range(config.max_attempts):
            if tries >= RELATION_TRIES:  # retrying a relation keeps relations balanced
                relation, tries = str(rng.choice(config.relations)), 0
            tries += 1
            counters['attempts'] += 1
            try:
                samples.append(_draw(ctx, relation, rng, posed))
                break
            except NoRegion as reason:
                counters[f'rejected_{reason}'] += 1
                if str(reason) == 'no_reference':
                    tries = RELATION_TRIES
        else:
            counters['unfilled'] += 1
    for name in rng.permutation(ctx.visible)[:config.locate_per_scene]:
        samples.append(_locate(ctx, str(name), rng))
    base = {'split': config.split, 'scene_index': index, 'scene_seed': scene.config.seed,
            'scene': scene.config.to_dict(), 'width': ctx.size[0], 'height': ctx.size[1]}
    if scene.config.world is not None:
        base['view'] = view_of(scene.config)
    for number, sample in enumerate(samples):
        kind = 'q' if sample.record['kind'] == 'placement' else 'loc'
        sample.record = {'id': f'{config.split}_{index:06d}_{kind}{number}', **base,
                         **sample.record}
    counters['samples'] += len(samples)
    return SceneSamples(index, scene, frame, samples, counters)
