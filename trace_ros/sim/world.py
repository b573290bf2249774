"""
Layout and MJCF of randomized worlds (``SceneConfig.world`` set; see ``randomization``).

The layout is drawn from the scene seed like the default one, on the world's table, with
1-12 objects of scaled sizes, named colours (the palette, optionally the extra colours)
tinted within their hue, and the world's gap between objects. The MJCF builds the table,
floor, sky, walls and lights from MuJoCo builtin textures and materials.
"""

import math

import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.objects import ALL_COLOURS, COLOURS, make_shape, scale_shape, tint
from trace_ros.sim.scene import (ROBOT_BASE, Scene, SceneConfig, SceneObject, TABLE_TOP_Z,
                                 tabletop_mjcf)

MAX_OBJECTS = 12


def workspace(table_half):
    """Return the (x range, y range) objects are placed in on a table of these half extents."""
    hx, hy = table_half
    return (-0.2, hx - 0.06), (-(hy - 0.08), hy - 0.08)


def generate_world_scene(config: SceneConfig) -> Scene:
    """Draw the layout of a randomized world from ``config.seed`` (``generate_scene``)."""
    world = config.world
    if not 1 <= config.num_objects <= MAX_OBJECTS:
        raise ValueError(f'a randomized world needs 1-{MAX_OBJECTS} objects')
    rng = np.random.default_rng([config.seed, 0x0B])
    palette = ALL_COLOURS if world.extra_colours else COLOURS
    (x0, x1), (y0, y1) = workspace(world.table_half)
    objects, placed = [], []
    for _ in range(8 * config.num_objects):
        if len(objects) == config.num_objects:
            break
        category = str(rng.choice(config.categories))
        shape = scale_shape(make_shape(category, rng), float(rng.uniform(*world.object_scale)))
        used = {o.colour for o in objects if o.category == category}
        colour = str(rng.choice([c for c in palette if c not in used]))
        rgb = tint(colour, rng, world.tint)
        for _ in range(200):
            xy = (float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)))
            if _fits(xy, shape.radius, placed, (x0, x1, y0, y1), world.gap):
                break
        else:
            continue
        yaw = float(rng.uniform(-math.pi, math.pi))
        objects.append(SceneObject(f'{colour}_{category}', f'{colour} {category}', category,
                                   colour, shape, (xy[0], xy[1], TABLE_TOP_Z), yaw, rgb))
        placed.append((xy, shape.radius))
    if not objects:
        raise RuntimeError(f'seed {config.seed}: no object fits')
    return Scene(config, tuple(objects))


def _fits(xy, radius, placed, bounds, gap) -> bool:
    x0, x1, y0, y1 = bounds
    if not (x0 + radius <= xy[0] <= x1 - radius and y0 + radius <= xy[1] <= y1 - radius):
        return False
    reach = panda.horizontal_distance(ROBOT_BASE, xy)
    if not panda.MIN_REACH + radius <= reach <= panda.REACH:
        return False
    return all(np.hypot(xy[0] - p[0], xy[1] - p[1]) >= radius + r + gap for p, r in placed)


def _f(values) -> str:
    return ' '.join(f'{v:.6g}' for v in values)


def _texture(name: str, kind: str, rgb, rgb2, repeat: float) -> str:
    """Write a builtin 2D texture and its material ('flat' is a plain colour)."""
    if kind == 'flat':
        return f'<material name="{name}" rgba="{_f(rgb)} 1" specular="0.1"/>'
    if kind == 'noise':
        builtin = (f'builtin="flat" mark="random" random="0.25" rgb1="{_f(rgb)}" '
                   f'markrgb="{_f(rgb2)}"')
    else:
        builtin = f'builtin="{kind}" rgb1="{_f(rgb)}" rgb2="{_f(rgb2)}"'
    return (f'<texture name="{name}" type="2d" {builtin} width="256" height="256"/>'
            f'<material name="{name}" texture="{name}" texrepeat="{repeat:.4g} {repeat:.4g}" '
            'specular="0.1"/>')


def _light(light) -> str:
    az, el = math.radians(light.azimuth_deg), math.radians(light.elevation_deg)
    toward = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    pos = np.array([0.0, 0.0, TABLE_TOP_Z]) + 3.0 * toward
    return (f'<light type="directional" pos="{_f(pos)}" dir="{_f(-toward)}" '
            f'diffuse="{_f(light.rgb)}" specular="0.15 0.15 0.15" '
            f'castshadow="{str(light.castshadow).lower()}"/>')


def _wall(index: int, wall) -> str:
    azimuth, distance, *rgb = wall
    a = math.radians(azimuth)
    return (f'<geom name="wall_{index}" type="box" size="0.02 5 2" '
            f'pos="{_f((distance * math.cos(a), distance * math.sin(a), 2.0))}" '
            f'euler="0 0 {a:.6g}" rgba="{_f(rgb)} 1"/>')


def world_mjcf(scene: Scene) -> str:
    """MJCF of a randomized world without the arm (``Scene.build`` attaches it)."""
    world = scene.config.world
    ambient, head = world.ambient, world.headlight
    floor = _texture('floor', world.floor_texture, world.floor_rgb, world.floor_rgb2,
                     world.floor_repeat)
    table = _texture('table', world.table_texture, world.table_rgb, world.table_rgb2,
                     world.table_repeat)
    assets = (f'<texture name="sky" type="skybox" builtin="gradient" rgb1="{_f(world.sky_rgb)}" '
              f'rgb2="{_f(world.sky_rgb2)}" width="64" height="64"/>{floor}{table}'
              f'<material name="table_leg" rgba="{_f(world.leg_rgb)} 1"/>')
    surroundings = ('<geom name="floor" type="plane" size="12 12 0.05" material="floor"/>'
                    + ''.join(_wall(i, wall) for i, wall in enumerate(world.walls)))
    return tabletop_mjcf(
        scene, model='trace_tabletop_random', table_half=world.table_half,
        headlight=f'ambient="{_f([ambient] * 3)}" diffuse="{_f([head] * 3)}" specular="0 0 0"',
        assets=assets, lights=''.join(_light(light) for light in world.lights),
        surroundings=surroundings)
