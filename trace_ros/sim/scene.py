"""
Tabletop scenes: a table, a Franka Panda, 3-8 everyday objects and a fixed RGB-D camera.

``generate_scene(SceneConfig(seed=...))`` draws a non-overlapping layout of upright
objects from the seed alone (the same seed gives the same scene); ``Scene.build()``
compiles it into a MuJoCo model. World frame: z up, origin on the floor under the table
centre, table top at ``TABLE_TOP_Z``; the arm stands on the far edge facing +x and the
default camera looks at the table from the opposite side.
"""

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import mujoco
import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.camera import SimCamera
from trace_ros.sim.objects import ACCENT_RGBA, CATEGORIES, COLOURS, make_shape, Shape

TABLE_TOP_Z = 0.75
TABLE_HALF = (0.4, 0.6)  # half extents of the table top (x, y), metres
TABLE_THICKNESS = 0.04
ROBOT_BASE = (-0.33, 0.0, TABLE_TOP_Z)
# Objects are placed in this part of the table top (x range, y range)...
WORKSPACE = ((-0.2, 0.34), (-0.52, 0.52))
GAP = 0.03  # ...at least this far apart (footprint circles), metres.
MIN_OBJECTS, MAX_OBJECTS = 3, 8

# Per-pixel labels of the segmentation render (ground truth): objects follow in order.
LABEL_BACKGROUND, LABEL_TABLE, LABEL_ROBOT, FIRST_OBJECT_LABEL = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """The fixed RGB-D camera: image size, vertical field of view and pose (look-at)."""

    width: int = 640
    height: int = 480
    fovy_deg: float = 55.0
    position: Tuple[float, float, float] = (1.0, 0.0, 1.45)
    look_at: Tuple[float, float, float] = (0.0, 0.0, TABLE_TOP_Z)
    roll_deg: float = 0.0

    def camera(self) -> SimCamera:
        """Build the pinhole model and optical-frame pose of this camera."""
        return SimCamera.look_at(self.width, self.height, self.fovy_deg, self.position,
                                 self.look_at, self.roll_deg)


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """
    Everything a scene is generated from; num_objects 0 draws 3-8 from the seed.

    ``world`` (a ``randomization.WorldConfig``) replaces the default look (lights, table,
    floor, walls, object sizes and tints); None is the default scene.
    """

    seed: int = 0
    num_objects: int = 0
    robot: bool = True
    categories: Tuple[str, ...] = CATEGORIES
    camera: CameraConfig = CameraConfig()
    world: Optional[Any] = None

    def to_dict(self) -> Dict:
        """Plain-data form (JSON-serializable); unset new fields are left out."""
        values = dataclasses.asdict(self)
        if not self.camera.roll_deg:
            del values['camera']['roll_deg']
        if self.world is None:
            del values['world']
        return values

    @classmethod
    def from_dict(cls, values: Dict) -> 'SceneConfig':
        """Inverse of to_dict."""
        values = dict(values)
        camera = values.pop('camera', {})
        camera = CameraConfig(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in camera.items()})
        values['categories'] = tuple(values.get('categories', CATEGORIES))
        if values.get('world') is not None:
            from trace_ros.sim.randomization import WorldConfig
            values['world'] = WorldConfig.from_dict(values['world'])
        return cls(camera=camera, **values)


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """A named object: ``label`` ("red mug") is how instructions refer to it."""

    name: str
    label: str
    category: str
    colour: str
    shape: Shape
    position: Tuple[float, float, float]  # centre of the bottom face, world
    yaw: float
    rgb: Optional[Tuple[float, float, float]] = None  # a tint of ``colour``; None: the palette's

    @property
    def rgba(self) -> Tuple[float, float, float, float]:
        """Return the main colour."""
        return (*(self.rgb or COLOURS[self.colour]), 1.0)

    @property
    def quat(self) -> Tuple[float, float, float, float]:
        """Orientation (w, x, y, z; MuJoCo order): upright, rotated by yaw."""
        return (math.cos(self.yaw / 2), 0.0, 0.0, math.sin(self.yaw / 2))


@dataclasses.dataclass(frozen=True)
class Scene:
    """A generated scene; objects are listed in segmentation-label order."""

    config: SceneConfig
    objects: Tuple[SceneObject, ...]

    @property
    def camera(self) -> SimCamera:
        """Return the RGB-D camera's intrinsics and optical-frame pose."""
        return self.config.camera.camera()

    @property
    def table_half(self) -> Tuple[float, float]:
        """Half extents (x, y) of this scene's table top; it is centred on the origin."""
        return self.config.world.table_half if self.config.world else TABLE_HALF

    def by_name(self, name: str) -> SceneObject:
        """Look an object up by name ('red_mug') or label ('red mug')."""
        for obj in self.objects:
            if name in (obj.name, obj.label):
                return obj
        raise KeyError(f"no object '{name}' in the scene "
                       f'(objects: {", ".join(o.name for o in self.objects)})')

    def label_of(self, name: str) -> int:
        """Segmentation label of an object."""
        return FIRST_OBJECT_LABEL + self.objects.index(self.by_name(name))

    def to_mjcf(self) -> str:
        """MJCF of the scene without the arm (build() attaches it)."""
        if self.config.world is not None:
            from trace_ros.sim.world import world_mjcf
            return world_mjcf(self)
        return tabletop_mjcf(self, model='trace_tabletop', table_half=TABLE_HALF,
                             **DEFAULT_LOOK)

    def build(self) -> mujoco.MjModel:
        """Compile the scene (with the Panda when config.robot) into a MuJoCo model."""
        spec = mujoco.MjSpec.from_string(self.to_mjcf())
        if self.config.robot:
            panda.attach_panda(spec, ROBOT_BASE)
        return spec.compile()

    def make_data(self, model: mujoco.MjModel) -> mujoco.MjData:
        """Make the simulation state at the generated layout (arm at home), kinematics computed."""
        data = mujoco.MjData(model)
        if self.config.robot:
            panda.set_home(model, data)
        mujoco.mj_forward(model, data)
        return data


def _fits(xy, radius, placed) -> bool:
    (x0, x1), (y0, y1) = WORKSPACE
    if not (x0 + radius <= xy[0] <= x1 - radius and y0 + radius <= xy[1] <= y1 - radius):
        return False
    reach = panda.horizontal_distance(ROBOT_BASE, xy)
    if not panda.MIN_REACH + radius <= reach <= panda.REACH:
        return False
    return all(np.hypot(xy[0] - p[0], xy[1] - p[1]) >= radius + r + GAP for p, r in placed)


def generate_scene(config: SceneConfig = SceneConfig()) -> Scene:
    """Draw a random, non-overlapping, upright layout from ``config.seed``."""
    if config.world is not None:
        from trace_ros.sim.world import generate_world_scene
        return generate_world_scene(config)
    unknown = set(config.categories) - set(CATEGORIES)
    if unknown or not config.categories:
        raise ValueError(f'categories must be a non-empty subset of {CATEGORIES}')
    if not 0 <= config.num_objects <= 12:
        raise ValueError('num_objects must be 0 (random 3-8) or 1-12')
    rng = np.random.default_rng(config.seed)
    count = config.num_objects or int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    objects, placed = [], []
    for _ in range(8 * count):
        if len(objects) == count:
            break
        category = str(rng.choice(config.categories))
        shape = make_shape(category, rng)
        used = {o.colour for o in objects if o.category == category}
        colour = str(rng.choice([c for c in COLOURS if c not in used]))
        (x0, x1), (y0, y1) = WORKSPACE
        for _ in range(200):
            xy = (float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)))
            if _fits(xy, shape.radius, placed):
                break
        else:
            continue
        yaw = float(rng.uniform(-math.pi, math.pi))
        objects.append(SceneObject(f'{colour}_{category}', f'{colour} {category}', category,
                                   colour, shape, (xy[0], xy[1], TABLE_TOP_Z), yaw))
        placed.append((xy, shape.radius))
    if len(objects) < min(count, MIN_OBJECTS):
        raise RuntimeError(f'seed {config.seed}: only {len(objects)} of {count} objects fit')
    return Scene(config, tuple(objects))


def number_text(value: float, decimals: int = 9, digits: int = 6) -> str:
    """
    Return ``value`` as model-file text that does not depend on its last bits.

    It is rounded to ``decimals`` places first, so rounding noise (1e-17 where the exact value
    is 0, or -0.0) is written as 0 on every CPU, then written with ``digits`` significant
    digits.
    """
    return f'{round(float(value), decimals) + 0.0:.{digits}g}'


def _f(values) -> str:
    return ' '.join(number_text(v) for v in values)


def object_xml(obj: SceneObject) -> str:
    """MJCF body of one object (free joint, its primitive parts)."""
    geoms = []
    for i, part in enumerate(obj.shape.parts):
        rgba = ACCENT_RGBA if part.accent else obj.rgba
        geoms.append(f'<geom name="{obj.name}/{i}" type="{part.kind}" size="{_f(part.size)}" '
                     f'pos="{_f(part.pos)}" quat="{_f(part.quat)}" rgba="{_f(rgba)}"/>')
    return (f'<body name="{obj.name}" pos="{_f(obj.position)}" quat="{_f(obj.quat)}">'
            f'<freejoint name="{obj.name}/joint"/>{"".join(geoms)}</body>')


def tabletop_mjcf(scene: Scene, *, model: str, table_half, headlight: str, assets: str,
                  lights: str, surroundings: str) -> str:
    """
    MJCF of a tabletop world without the arm: physics, the table, the objects and the camera.

    The world's look is given as MJCF: the headlight's attributes, the assets (with the
    ``table`` and ``table_leg`` materials), the lights and the surroundings (floor, walls).
    """
    cam = scene.config.camera
    camera = cam.camera()
    hx, hy = table_half
    leg_z = (TABLE_TOP_Z - TABLE_THICKNESS) / 2
    legs = ''.join(f'<geom type="box" size="0.025 0.025 {leg_z:.4f}" '
                   f'pos="{sx * (hx - 0.05):.3f} {sy * (hy - 0.05):.3f} {leg_z:.4f}" '
                   'material="table_leg"/>' for sx in (-1, 1) for sy in (-1, 1))
    return f"""<mujoco model="{model}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <statistic center="0 0 {TABLE_TOP_Z}" extent="1.5"/>
  <visual>
    <global offwidth="{max(cam.width, 640)}" offheight="{max(cam.height, 480)}"/>
    <quality shadowsize="2048" offsamples="0"/>
    <headlight {headlight}/>
    <map znear="0.01" zfar="10"/>
  </visual>
  <default>
    <geom density="400" friction="1 0.01 0.001" solref="0.004 1"/>
  </default>
  <asset>
    {assets}
  </asset>
  <worldbody>
    {lights}
    {surroundings}
    <body name="table">
      <geom name="table_top" type="box" size="{hx} {hy} {TABLE_THICKNESS / 2}"
        pos="0 0 {TABLE_TOP_Z - TABLE_THICKNESS / 2}" material="table"/>
      {legs}
    </body>
    {''.join(object_xml(o) for o in scene.objects)}
    <camera name="rgbd" pos="{_f(camera.position)}" xyaxes="{_f(camera.mujoco_xyaxes)}"
      fovy="{number_text(cam.fovy_deg)}"/>
  </worldbody>
</mujoco>
"""


# The default world's look: a checker floor, a wooden table, a back wall, a key and a fill light.
DEFAULT_LOOK = {
    'headlight': 'ambient="0.32 0.32 0.32" diffuse="0.35 0.35 0.35" specular="0.05 0.05 0.05"',
    'assets': """<texture name="floor" type="2d" builtin="checker" rgb1="0.52 0.52 0.5"
      rgb2="0.44 0.44 0.43" width="256" height="256"/>
    <material name="floor" texture="floor" texrepeat="10 10"/>
    <texture name="wood" type="2d" builtin="flat" mark="random" random="0.08"
      rgb1="0.74 0.58 0.42" markrgb="0.66 0.5 0.35" width="512" height="512"/>
    <material name="table" texture="wood" texrepeat="2 2" specular="0.1"/>
    <material name="table_leg" rgba="0.35 0.27 0.2 1"/>
    <material name="wall" rgba="0.86 0.85 0.82 1"/>""",
    'lights': """<light name="key" pos="0.8 0.5 2.8" dir="-0.3 -0.18 -1" castshadow="true"
      diffuse="0.55 0.55 0.55" specular="0.2 0.2 0.2"/>
    <light name="fill" pos="-1.0 -1.2 2.5" dir="0.4 0.5 -1" castshadow="false"
      diffuse="0.2 0.2 0.2" specular="0 0 0"/>""",
    'surroundings': """<geom name="floor" type="plane" size="5 5 0.05" material="floor"/>
    <geom name="wall_back" type="box" size="0.02 5 1.5" pos="-1.8 0 1.5" material="wall"/>"""}
