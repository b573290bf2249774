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
from trace_ros.ros.parameters import launch_arguments, parameter_type
from trace_ros.ros.params import TraceNodeConfig

# trace_node's model and prompt parameters: each is also the launch argument of the same
# name (default and description from TraceNodeConfig), passed to the node after params_file,
# so that it wins over the file.
MODEL_PARAMETERS = ('backend', 'model', 'device', 'openai_base_url', 'openai_model',
                    'prompt_style', 'model_profile')


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
        *launch_arguments(TraceNodeConfig, MODEL_PARAMETERS),
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


def node_parameters(config: dict, config_cls, names) -> dict:
    """
    Return {name: the launch argument ``name`` as the type ``config_cls`` declares}.

    For the node parameters ``names`` that are launch arguments (see
    trace_ros.ros.parameters.launch_arguments): ``config`` maps them to LaunchConfigurations.
    """
    return {name: ParameterValue(config[name], value_type=parameter_type(config_cls, name))
            for name in names}


def trace_node_actions(config: dict, parameters=(), remappings=None) -> list:
    """
    Return the actions that start trace_node, which then configures and activates itself.

    ``config`` maps every argument of trace_node_arguments() to its LaunchConfiguration.
    The node runs in config['namespace'] and gets, in this order, config['params_file'], a
    dict of MODEL_PARAMETERS (typed as trace_node declares them, all strings:
    ``openai_model:=7`` is the name '7'), then the caller's ``parameters`` (a list of dicts);
    ``remappings`` go to the node as they are.

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
                    node_parameters(config, TraceNodeConfig, MODEL_PARAMETERS),
                    *parameters],
        remappings=remappings,
    )]
