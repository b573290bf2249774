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
from trace_ros.ros.launch_support import (declare_arguments, fastdds_profile, node_parameters,
                                          trace_node_actions, trace_node_arguments)
from trace_ros.ros.parameters import launch_arguments
from trace_ros.ros.sim_params import GoalExecutorConfig, SimConfig

# trace_sim's and trace_goal_executor's parameters that are launch arguments, with their
# names, defaults and descriptions; world_frame and camera_frame go to trace_node too.
SIM_PARAMETERS = ('seed', 'num_objects', 'task_index', 'relations', 'robot', 'randomize_world',
                  'rate', 'shadows', 'depth_encoding')
EXECUTOR_PARAMETERS = ('settle_time',)
FRAMES = ('world_frame', 'camera_frame')
ARGUMENTS = (trace_node_arguments('Namespace of the three nodes and their relative topics.')
             + launch_arguments(SimConfig, SIM_PARAMETERS)
             + launch_arguments(GoalExecutorConfig, EXECUTOR_PARAMETERS)
             + launch_arguments(SimConfig, FRAMES))


def generate_launch_description():
    """Declare the arguments; start the sim, the executor and trace_node (self-activating)."""
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}

    def typed(name, value_type):
        return ParameterValue(config[name], value_type=value_type)

    sim = Node(
        package='trace_ros', executable='trace_sim', name='trace_sim',
        namespace=config['namespace'], output='screen',
        parameters=[node_parameters(config, SimConfig, SIM_PARAMETERS + FRAMES)],
    )
    # trace_sim's camera pose T_world_optical, computed from the seed when the launch runs.
    camera_pose = PythonExpression(
        ['trace_ros.sim.randomization.sim_camera_pose(', config['seed'], ", '",
         config['randomize_world'], "')"],
        python_modules=['trace_ros.sim.randomization', 'trace_ros'])
    executor = Node(
        package='trace_ros', executable='trace_goal_executor', name='trace_goal_executor',
        namespace=config['namespace'], output='screen',
        parameters=[node_parameters(config, GoalExecutorConfig,
                                    ('world_frame',) + EXECUTOR_PARAMETERS)],
    )
    trace = trace_node_actions(
        config,
        parameters=[{'target_frame': typed('world_frame', str),
                     'static_transform_parent': typed('world_frame', str),
                     'static_transform_child': typed('camera_frame', str),
                     'static_transform': ParameterValue(camera_pose, value_type=List[float])}])
    return LaunchDescription(declare_arguments(ARGUMENTS) + fastdds_profile() + [sim, executor]
                             + trace)
