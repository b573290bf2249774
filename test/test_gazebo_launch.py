"""
gazebo.launch.py, loaded and resolved with the real launch API (Gazebo itself is not run).

Gazebo and ros_gz are not installable here, so the processes are not started: the launch
file is loaded as `ros2 launch` loads it, its arguments are set in a LaunchContext, and every
substitution, parameter file and command line of gz sim, the bridge and trace_node is
resolved and checked against the installed share directory, the world and trace_node's
topics.
"""

import pathlib
import xml.etree.ElementTree as ET

import pytest

REASON = ('launch / launch_ros are not installed: source a ROS 2 install or ros_extras '
          '(../shared/ros_extras/README.md)')
pytest.importorskip('launch.actions', reason=REASON)  # not this checkout's launch/ folder
pytest.importorskip('launch_ros.actions', reason=REASON)

from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess,  # noqa: E402, I100
                            RegisterEventHandler)
from launch.utilities import (normalize_to_list_of_substitutions,  # noqa: E402
                              perform_substitutions)
from launch_resolve import (installed_source, node_command_line,  # noqa: E402
                            node_parameters, resolved, ROOT, share_directory)
from launch_ros.actions import LifecycleNode, Node  # noqa: E402
import yaml  # noqa: E402

NAME = 'gazebo.launch.py'


def _resolved(**arguments):
    """Return (context, entities) of the Gazebo launch with ``arguments`` and defaults set."""
    description, context = resolved(NAME, **arguments)
    return context, description.entities


def test_arguments_are_declared_with_descriptions_and_defaults():
    context, entities = _resolved()
    declared = [e for e in entities if isinstance(e, DeclareLaunchArgument)]
    names = [a.name for a in declared]
    assert {'world', 'gui', 'bridge_config', 'namespace', 'model', 'backend',
            'params_file'} <= set(names)
    assert len(names) == len(set(names))
    for argument in declared:
        assert argument.description, argument.name
        assert perform_substitutions(context, argument.default_value) is not None
    assert (share_directory() / 'launch' / NAME).is_file(), 'run scripts/setup.sh (colcon build)'


@pytest.mark.parametrize('gui', ['true', 'false'])
def test_gz_sim_runs_the_installed_world(gui):
    context, entities = _resolved(gui=gui)
    processes = [e for e in entities if type(e) is ExecuteProcess]
    running = [p for p in processes if p.condition.evaluate(context)]
    assert len(processes) == 2 and len(running) == 1
    argv = [perform_substitutions(context, part) for part in running[0].cmd]
    assert argv[:3] == ['gz', 'sim', '-r']
    assert ('-s' in argv) == (gui == 'false')
    assert installed_source(argv[-1]) == pathlib.Path('sim/worlds/trace_tabletop.sdf')


def test_bridge_and_trace_node_share_the_namespace_and_topics():
    from trace_ros.ros.camera_sync import TOPICS
    from trace_ros.sim.scene import CameraConfig
    context, entities = _resolved(namespace='robot1')
    bridge, = [e for e in entities if type(e) is Node]
    trace, = [e for e in entities if isinstance(e, LifecycleNode)]

    def text(value):
        return perform_substitutions(context, normalize_to_list_of_substitutions(value))

    assert text(bridge.node_package) == 'ros_gz_bridge'
    assert text(bridge.node_executable) == 'parameter_bridge'
    assert (text(trace.node_package), text(trace.node_executable)) == ('trace_ros', 'trace_node')
    bridge_params = node_parameters(node_command_line(bridge, context))
    trace_argv = node_command_line(trace, context)
    trace_params = node_parameters(trace_argv)
    assert bridge.expanded_node_namespace == trace.expanded_node_namespace == '/robot1'
    assert not trace.expanded_remapping_rules  # the bridge's relative topics are its own
    assert bridge_params['use_sim_time'] is True and trace_params['use_sim_time'] is True
    params_files = [v for f, v in zip(trace_argv, trace_argv[1:]) if f == '--params-file']
    assert installed_source(params_files[0]) == pathlib.Path('config/trace.yaml')

    # Every bridged topic is one trace_node subscribes to (same name and type), the clock
    # (absolute: use_sim_time reads /clock in any namespace), or depth/camera_info, which
    # trace_sim also publishes.
    config = installed_source(bridge_params['config_file'])
    assert config == pathlib.Path('sim/gz_bridge.yaml')
    bridged = {e['ros_topic_name']: e for e in yaml.safe_load((ROOT / config).read_text())}
    for topic, msg_type in TOPICS:
        module = msg_type.__module__.split('.')[0]
        assert bridged[topic]['ros_type_name'] == f'{module}/msg/{msg_type.__name__}', topic
    assert set(bridged) == {topic for topic, _ in TOPICS} | {'/clock', 'depth/camera_info'}
    assert all(e['direction'] == 'GZ_TO_ROS' for e in bridged.values())

    # The Gazebo side: the world's camera sensor publishes the bridged gz topics, stamped
    # with trace_node's camera frame, and trace_node gets that camera's pose.
    world = ET.parse(ROOT / 'sim' / 'worlds' / 'trace_tabletop.sdf').getroot()
    sensor, = [s for s in world.iter('sensor') if s.get('type') == 'rgbd_camera']
    for topic, _ in TOPICS:
        assert bridged[topic]['gz_topic_name'].startswith(sensor.find('topic').text + '/')
    assert trace_params['static_transform_child'] == sensor.find('gz_frame_id').text
    assert trace_params['target_frame'] == trace_params['static_transform_parent'] == 'world'
    pose = CameraConfig().camera().world_from_optical
    assert trace_params['static_transform'] == pytest.approx(
        [*pose.translation, *pose.rotation], abs=1e-9)


def test_trace_node_configures_and_activates_itself_in_the_launch_file():
    _, entities = _resolved()
    trace, = [e for e in entities if isinstance(e, LifecycleNode)]
    words = [part[0].text for part in trace.cmd if len(part) == 1 and hasattr(part[0], 'text')]
    assert '--no-autostart' not in words  # no change_state request that DDS could lose
    assert not [e for e in entities if isinstance(e, (RegisterEventHandler, EmitEvent))]
