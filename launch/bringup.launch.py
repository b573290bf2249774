"""
Bring up trace_node with its parameter file, configured and activated.

ros2 launch trace_ros bringup.launch.py [model:=DIR] [backend:=openai openai_base_url:=URL]
    [namespace:=NS] [target_frame:=FRAME] [color_topic:=...] [depth_topic:=...]
    [camera_info_topic:=...] [use_sim_time:=true] [params_file:=FILE]
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

ARGUMENTS = [
    ('namespace', '', 'Namespace of the node and its relative topics.'),
    ('params_file', PathJoinSubstitution([FindPackageShare('trace_ros'), 'config', 'trace.yaml']),
     'Parameter YAML of trace_node.'),
    ('backend', 'transformers', 'Model backend: transformers (in-process) or openai (server).'),
    ('model', '', 'transformers: local model dir or hub id; empty = embedded trace-tiny.'),
    ('device', 'cpu', 'transformers: torch device (cpu, cuda, auto).'),
    ('openai_base_url', 'http://localhost:8000/v1', 'openai: server base URL.'),
    ('openai_model', '', 'openai: served model name (empty = first listed).'),
    ('prompt_style', 'cor', 'cor (TRACE reasoning) or plain (points only).'),
    ('target_frame', 'base_link', 'Frame of the published placement goal.'),
    ('color_topic', 'color/image_raw', 'Colour image (rgb8/bgr8).'),
    ('depth_topic', 'depth/image_raw', 'Depth registered to colour (16UC1 mm or 32FC1 m).'),
    ('camera_info_topic', 'color/camera_info', 'CameraInfo of the colour camera.'),
    ('use_sim_time', 'false', 'Use /clock (simulation time).'),
]


def generate_launch_description():
    """Declare the arguments and start trace_node, then configure and activate it."""
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    node = LifecycleNode(
        package='trace_ros', executable='trace_node', name='trace_node',
        namespace=config['namespace'], output='screen',
        parameters=[config['params_file'], {
            name: config[name] for name in ('backend', 'model', 'device', 'openai_base_url',
                                            'openai_model', 'prompt_style', 'target_frame')
        }, {'use_sim_time': config['use_sim_time']}],
        remappings=[('color/image_raw', config['color_topic']),
                    ('depth/image_raw', config['depth_topic']),
                    ('color/camera_info', config['camera_info_topic'])],
        arguments=['--no-autostart'],
    )
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS] + [node, activate, configure])
