"""
Run TRACE against the tabletop in Gazebo: gz sim, the ros_gz bridge and trace_node.

ros2 launch trace_ros gazebo.launch.py [world:=FILE] [gui:=false] [namespace:=NS]
    [model:=DIR] [backend:=openai openai_base_url:=URL] [bridge_config:=FILE] ...

Needs Gazebo Harmonic (or newer) and ros_gz (ros_gz_bridge). gz sim runs the committed
world (share/trace_ros/sim/worlds/trace_tabletop.sdf, the MuJoCo default scene); the
bridge (sim/gz_bridge.yaml) publishes its RGB-D camera on trace_node's relative camera
topics and /clock, in the same namespace as trace_node. trace_node runs on simulation time,
is started, configured and activated as in bringup.launch.py
(trace_ros.ros.launch_support), publishes goals in the world frame and gets the default
world's camera pose T_world_optical as its static_transform parameter (with another world
publish that transform on TF).
"""

from launch import LaunchDescription
from launch.actions import ExecuteProcess, Shutdown
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from trace_ros.ros.launch_support import (declare_arguments, trace_node_actions,
                                          trace_node_arguments)
from trace_ros.sim.scene import CameraConfig

SHARE = FindPackageShare('trace_ros')
ARGUMENTS = trace_node_arguments('Namespace of trace_node, the bridge and their topics.') + [
    ('world', PathJoinSubstitution([SHARE, 'sim', 'worlds', 'trace_tabletop.sdf']),
     "SDF world for gz sim (trace_node's static_transform is the default world's camera)."),
    ('gui', 'true', 'Show the Gazebo GUI; false runs the server headless (-s '
                    '--headless-rendering).'),
    ('bridge_config', PathJoinSubstitution([SHARE, 'sim', 'gz_bridge.yaml']),
     'ros_gz_bridge configuration: Gazebo camera and clock topics onto ROS topics.'),
    ('world_frame', 'world', "World frame: of the camera pose and the goals (trace_node's "
                             'target_frame).'),
    ('camera_frame', 'camera_color_optical_frame',
     "Optical frame of the images (the world's gz_frame_id)."),
]


def generate_launch_description():
    """Declare the arguments, start gz sim, the bridge and trace_node (which activates itself)."""
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}

    def typed(name, value_type):
        return ParameterValue(config[name], value_type=value_type)

    gz_sim = [ExecuteProcess(cmd=['gz', 'sim', '-r', *options, config['world']], name='gz_sim',
                             output='screen', condition=condition(config['gui']),
                             on_exit=[Shutdown(reason='gz sim exited')])
              for options, condition in (([], IfCondition),
                                         (['-s', '--headless-rendering'], UnlessCondition))]
    bridge = Node(
        package='ros_gz_bridge', executable='parameter_bridge', name='trace_gz_bridge',
        namespace=config['namespace'], output='screen',
        parameters=[{'config_file': typed('bridge_config', str), 'use_sim_time': True}],
    )
    trace = trace_node_actions(
        config,
        parameters=[{'use_sim_time': True,
                     'target_frame': typed('world_frame', str),
                     'static_transform_parent': typed('world_frame', str),
                     'static_transform_child': typed('camera_frame', str),
                     'static_transform': CameraConfig().camera().world_from_optical.as_list()}])
    return LaunchDescription(declare_arguments(ARGUMENTS) + gz_sim + [bridge] + trace)
