"""
Randomized worlds for training on any camera, seeded and reproducible.

The camera goes anywhere a robot would mount one; lights, table, floor, walls, object sizes
and tints, clutter, the arm (shown or not) and sensor effects vary too.

``draw_world(seed)`` turns a seed into a ``SceneConfig`` whose ``world`` is a
``WorldConfig``: the same seed gives the same world, and the config alone rebuilds it
(``generate_scene``), so ground truth stays exact. ``WorldRandomization`` holds every range.
Camera yaw is the azimuth of the camera around its look-at point: 0 deg on +x (the default
camera's side, facing the arm), 180 deg behind the arm (over its shoulder).
"""

import colorsys
import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.scene import (CameraConfig, generate_scene, ROBOT_BASE, SceneConfig,
                                 TABLE_TOP_Z)
from trace_ros.sim.sensor import SensorConfig

Range = Tuple[float, float]
TEXTURES = ('flat', 'noise', 'checker', 'gradient')
ASPECTS = ((4, 3), (16, 9), (1, 1))


@dataclasses.dataclass(frozen=True)
class WorldRandomization:
    """The distributions a world is drawn from (uniform within each range)."""

    distance: Range = (0.5, 1.8)  # camera to look-at point (m)
    pitch_deg: Range = (20.0, 80.0)  # down from horizontal
    yaw_deg: Range = (-180.0, 180.0)
    roll_deg: Range = (-4.0, 4.0)
    fovy_deg: Range = (40.0, 75.0)
    aspects: Tuple[Tuple[int, int], ...] = ASPECTS
    width: Tuple[int, int] = (320, 1280)  # native image width (px)
    max_side: int = 640  # rendered (and stored) at most this large, same field of view
    look_jitter: float = 0.12  # m, look-at point around the objects' centroid
    look_height: Range = (0.0, 0.06)  # m above the table top
    min_in_view: float = 0.75  # share of objects whose centre must project into the image
    view_tries: int = 40
    robot_clearance: float = 0.35  # m, no camera this close to the arm's base column
    table_half_x: Range = (0.4, 0.55)
    table_half_y: Range = (0.45, 0.8)
    objects: Tuple[int, int] = (1, 12)
    object_scale: Range = (0.8, 1.25)
    gap: Range = (0.005, 0.03)  # m between objects' bounding circles
    extra_colours: float = 0.5  # probability of the extra named colours
    robot: float = 0.75  # probability the arm is in the scene
    lights: Tuple[int, int] = (1, 4)
    light_elevation_deg: Range = (25.0, 85.0)
    light_intensity: Range = (0.35, 1.0)  # summed diffuse of all lights
    colour_temperature: Range = (2700.0, 7500.0)  # K
    ambient: Range = (0.05, 0.45)
    headlight: Range = (0.0, 0.3)
    shadows: float = 0.75  # probability of shadows
    walls: Tuple[int, int] = (0, 2)
    wall_distance: Range = (1.3, 3.0)  # m from the table centre, behind it from the camera
    exposure: Range = (0.7, 1.35)
    gamma: Range = (0.8, 1.25)
    blur: float = 0.3  # probability of a blur of blur_sigma
    blur_sigma: Range = (0.3, 1.2)
    noise: float = 0.5
    noise_std: Range = (1.0, 8.0)
    jpeg: float = 0.5
    jpeg_quality: Tuple[int, int] = (30, 90)


@dataclasses.dataclass(frozen=True)
class LightConfig:
    """A directional light from (azimuth, elevation), its diffuse RGB, and its shadow."""

    azimuth_deg: float
    elevation_deg: float
    rgb: Tuple[float, float, float]
    castshadow: bool


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """How a randomized world looks; the objects' layout still comes from the scene seed."""

    table_half: Tuple[float, float] = (0.4, 0.6)
    table_texture: str = 'noise'
    table_rgb: Tuple[float, float, float] = (0.74, 0.58, 0.42)
    table_rgb2: Tuple[float, float, float] = (0.66, 0.5, 0.35)
    table_repeat: float = 2.0
    leg_rgb: Tuple[float, float, float] = (0.35, 0.27, 0.2)
    floor_texture: str = 'checker'
    floor_rgb: Tuple[float, float, float] = (0.52, 0.52, 0.5)
    floor_rgb2: Tuple[float, float, float] = (0.44, 0.44, 0.43)
    floor_repeat: float = 10.0
    sky_rgb: Tuple[float, float, float] = (0.6, 0.6, 0.6)
    sky_rgb2: Tuple[float, float, float] = (0.3, 0.3, 0.3)
    walls: Tuple[Tuple[float, ...], ...] = ()  # (azimuth deg, distance m, r, g, b)
    lights: Tuple[LightConfig, ...] = ()
    ambient: float = 0.3
    headlight: float = 0.3
    shadows: bool = True
    object_scale: Range = (1.0, 1.0)
    tint: float = 0.0  # 1: full hue/saturation/brightness jitter of the named colours
    extra_colours: bool = False
    gap: float = 0.03
    sensor: SensorConfig = SensorConfig()
    view: Dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict:
        """Plain-data form (JSON-serializable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict) -> 'WorldConfig':
        """Inverse of to_dict."""
        values = {k: _tuples(v) if k not in ('view', 'sensor', 'lights') else v
                  for k, v in values.items()}
        values['lights'] = tuple(LightConfig(v['azimuth_deg'], v['elevation_deg'],
                                             tuple(v['rgb']), bool(v['castshadow']))
                                 for v in values.get('lights', ()))
        values['sensor'] = SensorConfig(**values.get('sensor', {}))
        values['view'] = dict(values.get('view', {}))
        return cls(**values)


def _tuples(value: Any) -> Any:
    """Turn lists (nested) into tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def kelvin_rgb(kelvin: float) -> Tuple[float, float, float]:
    """Return the RGB (max channel 1) of a black body at ``kelvin`` (Tanner Helland's fit)."""
    t = kelvin / 100.0
    red = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    green = 99.47 * math.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    blue = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * math.log(t - 10) - 305.04)
    rgb = np.clip([red, green, blue], 0, 255)
    return tuple(float(v) for v in rgb / rgb.max())


def _colour(rng: np.random.Generator, saturation: Range, value: Range) -> Tuple[float, ...]:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))
    return tuple(round(float(c), 3) for c in rgb)


def _second(rng: np.random.Generator, rgb, texture: str) -> Tuple[float, ...]:
    """Draw a second texture colour: a contrast (checker, gradient) or a darker mark (noise)."""
    scale = rng.uniform(0.55, 0.85) if texture in ('noise', 'flat') else rng.uniform(0.3, 1.6)
    return tuple(round(float(np.clip(c * scale, 0, 1)), 3) for c in rgb)


def _surface(rng: np.random.Generator, saturation: Range, value: Range):
    texture = str(rng.choice(TEXTURES))
    rgb = _colour(rng, saturation, value)
    return texture, rgb, _second(rng, rgb, texture)


def _lights(rng: np.random.Generator, spec: WorldRandomization, shadows: bool):
    count = int(rng.integers(spec.lights[0], spec.lights[1] + 1))
    weights = rng.uniform(0.3, 1.0, count)
    weights *= rng.uniform(*spec.light_intensity) / weights.sum()
    lights = []
    for i, weight in enumerate(weights):
        colour = np.multiply(kelvin_rgb(rng.uniform(*spec.colour_temperature)), weight)
        lights.append(LightConfig(round(float(rng.uniform(-180, 180)), 2),
                                  round(float(rng.uniform(*spec.light_elevation_deg)), 2),
                                  tuple(round(float(c), 4) for c in colour),
                                  bool(shadows and i == 0)))
    return tuple(lights)


def draw_appearance(seed: int, spec: WorldRandomization = WorldRandomization()) -> WorldConfig:
    """Draw everything of a world but its view and walls (``draw_world`` adds those)."""
    rng = np.random.default_rng([seed, 0x3D])
    table_half = (round(float(rng.uniform(*spec.table_half_x)), 3),
                  round(float(rng.uniform(*spec.table_half_y)), 3))
    table = _surface(rng, (0.0, 0.45), (0.25, 0.9))
    floor = _surface(rng, (0.0, 0.4), (0.15, 0.85))
    shadows = bool(rng.random() < spec.shadows)
    sensor = SensorConfig(
        exposure=round(float(rng.uniform(*spec.exposure)), 3),
        gamma=round(float(rng.uniform(*spec.gamma)), 3),
        blur_sigma=round(float(rng.uniform(*spec.blur_sigma)), 2) if rng.random() < spec.blur
        else 0.0,
        noise_std=round(float(rng.uniform(*spec.noise_std)), 2) if rng.random() < spec.noise
        else 0.0,
        jpeg_quality=int(rng.integers(*spec.jpeg_quality)) if rng.random() < spec.jpeg else 0)
    return WorldConfig(
        table_half=table_half, table_texture=table[0], table_rgb=table[1], table_rgb2=table[2],
        table_repeat=round(float(rng.uniform(1, 6)), 2),
        leg_rgb=_colour(rng, (0, 0.5), (0.1, 0.7)),
        floor_texture=floor[0], floor_rgb=floor[1], floor_rgb2=floor[2],
        floor_repeat=round(float(rng.uniform(4, 30)), 1),
        sky_rgb=_colour(rng, (0, 0.3), (0.4, 1.0)), sky_rgb2=_colour(rng, (0, 0.3), (0.05, 0.6)),
        lights=_lights(rng, spec, shadows), ambient=round(float(rng.uniform(*spec.ambient)), 3),
        headlight=round(float(rng.uniform(*spec.headlight)), 3), shadows=shadows,
        object_scale=spec.object_scale, tint=1.0,
        extra_colours=bool(rng.random() < spec.extra_colours),
        gap=round(float(rng.uniform(*spec.gap)), 4), sensor=sensor)


def image_size(rng: np.random.Generator, spec: WorldRandomization) -> Tuple[int, ...]:
    """Draw a native (width, height) and the rendered size (max side ``spec.max_side``)."""
    aspect = spec.aspects[int(rng.integers(len(spec.aspects)))]
    width = int(rng.integers(spec.width[0] // 16, spec.width[1] // 16 + 1)) * 16
    height = int(round(width * aspect[1] / aspect[0]))
    scale = min(1.0, spec.max_side / max(width, height))
    return width, height, int(round(width * scale)), int(round(height * scale))


def _in_view(camera, points: np.ndarray, margin: float = 0.02) -> float:
    uv, z = camera.project(points)
    w, h = camera.width, camera.height
    ok = (z > 0) & (uv[:, 0] >= margin * w) & (uv[:, 0] <= (1 - margin) * w - 1) \
        & (uv[:, 1] >= margin * h) & (uv[:, 1] <= (1 - margin) * h - 1)
    return float(ok.mean())


def draw_view(scene, spec: WorldRandomization, rng: np.random.Generator
              ) -> Tuple[CameraConfig, Dict[str, float]]:
    """
    Draw a camera that sees most objects of ``scene`` (its pose, intrinsics, image size).

    Views too close to the arm's base column, or showing fewer than ``spec.min_in_view`` of
    the objects' centres, are redrawn; after ``spec.view_tries`` the best one is kept.
    """
    centres = np.array([[o.position[0], o.position[1], o.position[2] + o.shape.height / 2]
                        for o in scene.objects])
    centroid = centres[:, :2].mean(axis=0)
    hx, hy = scene.table_half
    best = None
    for _ in range(spec.view_tries):
        yaw, pitch = rng.uniform(*spec.yaw_deg), rng.uniform(*spec.pitch_deg)
        distance, roll = rng.uniform(*spec.distance), rng.uniform(*spec.roll_deg)
        fovy = rng.uniform(*spec.fovy_deg)
        native_w, native_h, width, height = image_size(rng, spec)
        look = np.clip(centroid + rng.uniform(-1, 1, 2) * spec.look_jitter,
                       [-hx + 0.1, -hy + 0.1], [hx - 0.1, hy - 0.1])
        look = np.append(look, TABLE_TOP_Z + rng.uniform(*spec.look_height))
        y, p = math.radians(yaw), math.radians(pitch)
        position = look + distance * np.array([math.cos(p) * math.cos(y),
                                               math.cos(p) * math.sin(y), math.sin(p)])
        if scene.config.robot and position[2] < TABLE_TOP_Z + 1.1 and \
                panda.horizontal_distance(ROBOT_BASE, position) < spec.robot_clearance:
            continue
        camera = CameraConfig(width, height, round(fovy, 3),
                              tuple(round(float(v), 4) for v in position),
                              tuple(round(float(v), 4) for v in look), round(roll, 3))
        seen = _in_view(camera.camera(), centres)
        view = {'yaw_deg': round(yaw, 2), 'pitch_deg': round(pitch, 2),
                'distance': round(distance, 4), 'roll_deg': round(roll, 3),
                'fovy_deg': round(fovy, 3), 'native_width': native_w,
                'native_height': native_h, 'in_view': round(seen, 3)}
        if best is None or seen > best[1]['in_view']:
            best = camera, view
        if seen >= spec.min_in_view:
            break
    if best is None:
        raise RuntimeError(f'seed {scene.config.seed}: every view was inside the arm')
    return best


def draw_world(seed: int, spec: WorldRandomization = WorldRandomization(),
               view: int = 0) -> SceneConfig:
    """
    Draw a randomized world from ``seed``: a SceneConfig with its ``world`` and camera.

    ``view`` redraws only the camera and the walls (for a view the render rejected).
    """
    world = draw_appearance(seed, spec)
    rng = np.random.default_rng([seed, 0x0C])
    count = int(rng.integers(spec.objects[0], spec.objects[1] + 1))
    robot = bool(rng.random() < spec.robot)
    scene = generate_scene(SceneConfig(seed=seed, num_objects=count, robot=robot, world=world))
    rng = np.random.default_rng([seed, 0xCA, view])
    camera, drawn = draw_view(scene, spec, rng)
    walls = []
    for _ in range(int(rng.integers(spec.walls[0], spec.walls[1] + 1))):
        azimuth = drawn['yaw_deg'] + 180 + rng.uniform(-50, 50)
        walls.append((round(float(azimuth), 2), round(float(rng.uniform(*spec.wall_distance)), 3),
                      *_colour(rng, (0, 0.35), (0.3, 0.95))))
    world = dataclasses.replace(world, walls=tuple(walls), view=drawn)
    return SceneConfig(seed=seed, num_objects=count, robot=robot, camera=camera, world=world)


def view_of(config: SceneConfig) -> Optional[Dict[str, float]]:
    """Return a scene's drawn view (yaw, pitch, distance, roll, fovy, native size) or None."""
    return dict(config.world.view) if config.world is not None else None


# The simulated closed loop (trace_sim, the demo) poses a placement task: at least 3 objects.
CLOSED_LOOP = WorldRandomization(objects=(3, 12))


def closed_loop_world(seed: int, max_side: int = CLOSED_LOOP.max_side) -> SceneConfig:
    """Return the randomized world trace_sim shows for ``seed`` (``randomize_world``)."""
    return draw_world(seed, dataclasses.replace(CLOSED_LOOP, max_side=max_side))


def sim_camera_pose(seed: int, randomize: Any = False) -> List[float]:
    """
    Return trace_sim's camera pose T_world_optical as [x, y, z, qx, qy, qz, qw].

    The default camera, or with ``randomize`` (a bool or 'true'/'false', as launch
    arguments give it) the camera of ``closed_loop_world(seed)``; the pose does not depend
    on the image size. sim.launch.py hands it to trace_node as its static transform.
    """
    if str(randomize).lower() in ('true', '1'):
        camera = closed_loop_world(int(seed)).camera
    else:
        camera = CameraConfig()
    return [float(v) for v in camera.camera().world_from_optical.as_list()]
