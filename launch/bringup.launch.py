"""
Bring up trace_node with its parameter file, configured and activated.

ros2 launch trace_ros bringup.launch.py [model:=DIR] [backend:=openai openai_base_url:=URL]
    [namespace:=NS] [target_frame:=FRAME] [color_topic:=...] [depth_topic:=...]
    [camera_info_topic:=...] [use_sim_time:=true] [params_file:=FILE]

trace_node comes from trace_ros.ros.launch_support, shared with sim.launch.py and
gazebo.launch.py; it configures and activates itself (see trace_node_actions).
"""

from launch import LaunchDescription
from launch.substitutions import LaunchConfiguration
from trace_ros.ros.launch_support import (declare_arguments, fastdds_profile, node_parameters,
                                          trace_node_actions, trace_node_arguments)
from trace_ros.ros.parameters import launch_arguments
from trace_ros.ros.params import TraceNodeConfig

ARGUMENTS = trace_node_arguments('Namespace of the node and its relative topics.') + [
    *launch_arguments(TraceNodeConfig, ['target_frame']),
    ('color_topic', 'color/image_raw', 'Colour image (rgb8/bgr8).'),
    ('depth_topic', 'depth/image_raw', 'Depth registered to colour (16UC1 mm or 32FC1 m).'),
    ('camera_info_topic', 'color/camera_info', 'CameraInfo of the colour camera.'),
    ('use_sim_time', 'false', 'Use /clock (simulation time).'),
]


def generate_launch_description():
    """Declare the arguments and start trace_node (it configures and activates itself)."""
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    trace = trace_node_actions(
        config,
        parameters=[node_parameters(config, TraceNodeConfig, ['target_frame']),
                    {'use_sim_time': config['use_sim_time']}],
        remappings=[('color/image_raw', config['color_topic']),
                    ('depth/image_raw', config['depth_topic']),
                    ('color/camera_info', config['camera_info_topic'])])
    return LaunchDescription(declare_arguments(ARGUMENTS) + fastdds_profile() + trace)
