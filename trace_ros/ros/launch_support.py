"""
The part of the launch files (bringup, sim, gazebo) that starts trace_node, shared by all.

Only launch files import this module: it needs launch and launch_ros (a ROS 2 install has
them), which the rest of trace_ros never imports.
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

_MODEL_ARGUMENTS = [
    ('backend', 'transformers', 'Model backend: transformers (in-process) or openai (server).'),
    ('model', '', 'transformers: local model dir or hub id; empty or trace-tiny = embedded.'),
    ('device', 'cpu', 'transformers: torch device (cpu, cuda, auto).'),
    ('openai_base_url', 'http://localhost:8000/v1', 'openai: server base URL.'),
    ('openai_model', '', 'openai: served model name (empty = first listed).'),
    ('prompt_style', 'cor', 'cor (TRACE reasoning) or plain (points only).'),
    ('model_profile', 'auto', 'Model family (docs/MODELS.md); auto detects it.'),
]
# trace_node's model and prompt parameters: each is the launch argument of the same name,
# passed to the node after params_file, so that it wins over the file.
MODEL_PARAMETERS = tuple(name for name, _, _ in _MODEL_ARGUMENTS)


def trace_node_arguments(namespace_description: str) -> list:
    """
    Return the (name, default, description) entries of trace_node's launch arguments.

    namespace (described by the caller: which nodes share it), params_file, then
    MODEL_PARAMETERS. A launch file appends its own arguments and declares them all.
    """
    return [
        ('namespace', '', namespace_description),
        ('params_file',
         PathJoinSubstitution([FindPackageShare('trace_ros'), 'config', 'trace.yaml']),
         'Parameter YAML of trace_node.'),
        *_MODEL_ARGUMENTS,
    ]


def fastdds_profile() -> list:
    """
    Return the action that makes every process of the launch load trace_ros's Fast DDS profile.

    Put it before the nodes: camera publishers need it as much as trace_node (the shared-memory
    segment that holds an image is the publisher's). A profile the user set is kept.
    """
    default = PathJoinSubstitution([FindPackageShare('trace_ros'), 'config',
                                    'fastdds_profile.xml'])
    return [SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', EnvironmentVariable(
        'FASTDDS_DEFAULT_PROFILES_FILE', default_value=default))]


def declare_arguments(arguments: list) -> list:
    """Return a DeclareLaunchArgument for each (name, default, description) entry."""
    return [DeclareLaunchArgument(name, default_value=default, description=description)
            for name, default, description in arguments]


def trace_node_actions(config: dict, parameters=(), remappings=None) -> list:
    """
    Return the actions that start trace_node, which then configures and activates itself.

    ``config`` maps every argument of trace_node_arguments() to its LaunchConfiguration.
    The node runs in config['namespace'] and gets, in this order, config['params_file'], a
    dict of MODEL_PARAMETERS (strings, as trace_node declares them: ``openai_model:=7`` is
    the name '7'), then the caller's ``parameters`` (a list of dicts); ``remappings`` go to
    the node as they are.

    The node takes its own transitions (its autostart) rather than launch_ros's ChangeState
    events: launch_ros sends one change_state request as soon as the service is listed, and
    DDS can drop a request sent before the endpoints have matched; the node then stayed
    unconfigured for good (seen on a loaded CI machine). It is still a LifecycleNode action,
    so launch logs its transitions and event handlers can follow them.
    """
    return [LifecycleNode(
        package='trace_ros', executable='trace_node', name='trace_node',
        namespace=config['namespace'], output='screen',
        parameters=[config['params_file'],
                    {name: ParameterValue(config[name], value_type=str)
                     for name in MODEL_PARAMETERS},
                    *parameters],
        remappings=remappings,
    )]
