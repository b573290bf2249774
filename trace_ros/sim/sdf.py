"""
Export a scene as an SDF world for Gazebo (gz sim): table, objects and the RGB-D camera.

The objects use the same primitives, sizes, colours and poses as the MuJoCo scene, and the
camera the same pose and field of view. The Panda is left out (its Menagerie MJCF is not
an SDF model; Gazebo users add their own, e.g. from franka_description). Regenerate the
committed world with ``python -m trace_ros.sim.sdf --seed 0 > sim/worlds/trace_tabletop.sdf``.
"""

import argparse
import math
from typing import Sequence

import numpy as np
from trace_ros.core.transforms import quat_to_matrix
from trace_ros.sim.objects import ACCENT_RGBA, Part
from trace_ros.sim.scene import (generate_scene, number_text, Scene, SceneConfig,
                                 TABLE_HALF, TABLE_THICKNESS, TABLE_TOP_Z)

CAMERA_TOPIC = 'trace/camera'


DENSITY = 400.0  # kg/m^3, as the MJCF default


def _f(values: Sequence[float]) -> str:
    return ' '.join(number_text(v) for v in values)


def _volume(part: Part) -> float:
    s = part.size
    if part.kind == 'box':
        return 8 * s[0] * s[1] * s[2]
    if part.kind == 'cylinder':
        return math.pi * s[0] ** 2 * 2 * s[1]
    return 4 / 3 * math.pi * s[0] * s[1] * s[2]


def _inertial(shape) -> str:
    """Mass of the parts; inertia of a solid box bounding the shape (Gazebo's default is 1)."""
    mass = DENSITY * sum(_volume(p) for p in shape.parts)
    side, h = 2 * shape.radius, shape.height
    ixx = mass / 12 * (side ** 2 + h ** 2)
    izz = mass / 6 * side ** 2
    return (f'<inertial><pose>0 0 {_f([h / 2])} 0 0 0</pose><mass>{_f([mass])}</mass>'
            '<inertia>'
            f'<ixx>{_f([ixx])}</ixx><iyy>{_f([ixx])}</iyy><izz>{_f([izz])}</izz>'
            '<ixy>0</ixy><ixz>0</ixz><iyz>0</iyz></inertia></inertial>')


def rpy_from_matrix(rotation: np.ndarray) -> tuple:
    """Fixed-axis roll, pitch, yaw (SDF pose convention) of a rotation matrix."""
    m = np.asarray(rotation, float)
    pitch = math.asin(max(-1.0, min(1.0, -m[2, 0])))
    return math.atan2(m[2, 1], m[2, 2]), pitch, math.atan2(m[1, 0], m[0, 0])


def _pose(position, rotation) -> str:
    return f'<pose>{_f(position)} {_f(rpy_from_matrix(rotation))}</pose>'


def _geometry(part: Part) -> str:
    s = part.size
    if part.kind == 'box':
        return f'<box><size>{_f(2 * np.asarray(s))}</size></box>'
    if part.kind == 'cylinder':
        return (f'<cylinder><radius>{_f([s[0]])}</radius><length>{_f([2 * s[1]])}</length>'
                '</cylinder>')
    if part.kind == 'ellipsoid':
        return f'<ellipsoid><radii>{_f(s)}</radii></ellipsoid>'
    raise ValueError(f'no SDF geometry for MuJoCo type {part.kind}')


def _material(rgba) -> str:
    return (f'<material><ambient>{_f(rgba)}</ambient><diffuse>{_f(rgba)}</diffuse>'
            '<specular>0.1 0.1 0.1 1</specular></material>')


def _link_geoms(name: str, parts, rgba_of) -> str:
    out = []
    for i, part in enumerate(parts):
        w, x, y, z = part.quat
        pose = _pose(part.pos, quat_to_matrix((x, y, z, w)))
        geometry = _geometry(part)
        out.append(f'<collision name="{name}_c{i}">{pose}<geometry>{geometry}</geometry>'
                   f'</collision><visual name="{name}_v{i}">{pose}<geometry>{geometry}'
                   f'</geometry>{_material(rgba_of(part))}</visual>')
    return '\n        '.join(out)


def _table() -> str:
    hx, hy = TABLE_HALF
    leg_h = TABLE_TOP_Z - TABLE_THICKNESS
    parts = [Part('box', (hx, hy, TABLE_THICKNESS / 2), (0, 0, TABLE_TOP_Z - TABLE_THICKNESS / 2))]
    parts += [Part('box', (0.025, 0.025, leg_h / 2),
                   (sx * (hx - 0.05), sy * (hy - 0.05), leg_h / 2))
              for sx in (-1, 1) for sy in (-1, 1)]
    geoms = _link_geoms('table', parts, lambda p: (0.74, 0.58, 0.42, 1.0))
    return (f'<model name="table"><static>true</static><link name="link">\n        {geoms}\n'
            '      </link></model>')


def _object(obj) -> str:
    geoms = _link_geoms(obj.name, obj.shape.parts,
                        lambda p: ACCENT_RGBA if p.accent else obj.rgba)
    return (f'<model name="{obj.name}"><pose>{_f([*obj.position, 0, 0, obj.yaw])}</pose>'
            f'<link name="link">{_inertial(obj.shape)}\n        {geoms}\n      </link></model>')


def _camera(scene: Scene, rate: float) -> str:
    cam = scene.camera
    r = cam.rotation  # optical axes; Gazebo cameras look along +x with +z up
    sensor = np.column_stack([r[:, 2], -r[:, 0], -r[:, 1]])
    hfov = 2 * math.atan(math.tan(math.radians(cam.fovy_deg) / 2) * cam.width / cam.height)
    return f"""<model name="rgbd_camera"><static>true</static>
      {_pose(cam.position, sensor)}
      <link name="link"><sensor name="rgbd" type="rgbd_camera">
        <gz_frame_id>camera_color_optical_frame</gz_frame_id>
        <topic>{CAMERA_TOPIC}</topic><always_on>true</always_on>
        <update_rate>{_f([rate])}</update_rate>
        <camera><horizontal_fov>{number_text(hfov, 12, 9)}</horizontal_fov>
          <image><width>{cam.width}</width><height>{cam.height}</height>
            <format>R8G8B8</format></image>
          <clip><near>0.02</near><far>15</far></clip>
          <depth_camera><clip><near>0.02</near><far>15</far></clip></depth_camera>
        </camera></sensor></link></model>"""


def scene_to_sdf(scene: Scene, rate: float = 10.0) -> str:
    """SDF 1.9 world text of ``scene`` for gz sim (Harmonic or newer)."""
    objects = '\n    '.join(_object(o) for o in scene.objects)
    return f"""<?xml version="1.0"?>
<!-- Generated by trace_ros.sim.sdf from SceneConfig(seed={scene.config.seed}); do not edit.
     Objects: {', '.join(o.label for o in scene.objects)}. -->
<sdf version="1.9">
  <world name="trace_tabletop">
    <physics name="1ms" type="ignored"><max_step_size>0.002</max_step_size></physics>
    <plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>
    <plugin filename="gz-sim-user-commands-system" name="gz::sim::systems::UserCommands"/>
    <plugin filename="gz-sim-scene-broadcaster-system"
      name="gz::sim::systems::SceneBroadcaster"/>
    <plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors">
      <render_engine>ogre2</render_engine></plugin>
    <scene><ambient>0.4 0.4 0.4 1</ambient><background>0.85 0.85 0.82 1</background></scene>
    <light type="directional" name="key"><cast_shadows>true</cast_shadows>
      <pose>0.8 0.5 2.8 0 0 0</pose><direction>-0.3 -0.18 -1</direction>
      <diffuse>0.8 0.8 0.8 1</diffuse><specular>0.2 0.2 0.2 1</specular></light>
    <model name="ground_plane"><static>true</static><link name="link">
      <collision name="c"><geometry><plane><normal>0 0 1</normal><size>10 10</size></plane>
      </geometry></collision>
      <visual name="v"><geometry><plane><normal>0 0 1</normal><size>10 10</size></plane>
      </geometry>{_material((0.5, 0.5, 0.48, 1))}</visual></link></model>
    {_table()}
    {objects}
    {_camera(scene, rate)}
  </world>
</sdf>
"""


def main(argv=None) -> None:
    """Print the SDF world of a seed's scene."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-objects', type=int, default=0)
    parser.add_argument('--rate', type=float, default=10.0)
    args = parser.parse_args(argv)
    print(scene_to_sdf(generate_scene(SceneConfig(args.seed, args.num_objects)), args.rate),
          end='')


if __name__ == '__main__':
    main()
