"""
The launch files, resolved with the real launch API (no process is started).

Every argument is declared once with a description and a default and is used; every node
runs an installed executable of this package with parameters that node declares (with the
declared type); an argument named after a node's parameter has its default and description;
sim.launch.py wires its three nodes together. test_launch.py runs
bringup.launch.py and sim.launch.py for real; test_gazebo_launch.py checks the Gazebo side.
"""

import ast
import dataclasses
import importlib
import inspect
import pathlib
import re

import pytest

REASON = ('launch / launch_ros are not installed: source a ROS 2 install or ros_extras '
          '(scripts/setup.sh builds them from ../shared/ros_extras)')
pytest.importorskip('launch.actions', reason=REASON)  # not this checkout's launch/ folder
pytest.importorskip('launch_ros.actions', reason=REASON)

from launch.actions import DeclareLaunchArgument  # noqa: E402, I100 (after the skip)
from launch_resolve import (node_command_line, node_parameters, resolved, ROOT,  # noqa: E402
                            text, used_configurations)
from launch_ros.actions import Node  # noqa: E402

LAUNCH_FILES = ['bringup.launch.py', 'sim.launch.py', 'gazebo.launch.py']
# Configurations launch's own actions read (ExecuteProcess: timeouts, prefixes).
LAUNCH_OWN = {'sigterm_timeout', 'sigkill_timeout', 'launch-prefix', 'launch-prefix-filter'}


def launch_module(name: str):
    """Import launch/NAME as a module (for its ARGUMENTS table)."""
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'),
                                                  ROOT / 'launch' / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def installed_executables() -> set:
    """Return the executables CMakeLists.txt installs into lib/trace_ros."""
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    programs = re.search(r'install\(PROGRAMS([^)]*)DESTINATION lib/\$\{PROJECT_NAME\}', cmake)
    return {pathlib.Path(p).name for p in programs.group(1).split()}


def node_module(executable: str) -> str:
    """Return the module whose main() the executable in bin/ runs."""
    tree = ast.parse((ROOT / 'bin' / executable).read_text())
    modules = [node.module for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and any(a.name == 'main' for a in node.names)]
    assert len(modules) == 1, f'bin/{executable} should import one main()'
    return modules[0]


def config_classes(module_name: str) -> list:
    """Return the config dataclasses the node of ``module_name`` passes to declare_parameters."""
    module = importlib.import_module(module_name)
    return [getattr(module, call.args[1].id)
            for call in ast.walk(ast.parse(inspect.getsource(module)))
            if isinstance(call, ast.Call)
            and getattr(call.func, 'attr', getattr(call.func, 'id', '')) == 'declare_parameters']


def declared_parameters(module_name: str) -> dict:
    """
    Return {name: type} of the parameters the node of ``module_name`` declares.

    Every field of the config dataclasses it passes to declare_parameters(node, ConfigClass);
    rclpy declares use_sim_time on every node.
    """
    declared = {'use_sim_time': bool}
    for config_cls in config_classes(module_name):
        defaults = config_cls()
        declared.update({f.name: type(getattr(defaults, f.name))
                         for f in dataclasses.fields(config_cls)})
    assert len(declared) > 2, f'found no parameter declarations in {module_name}'
    return declared


def started_configs(name: str) -> list:
    """Return the config dataclasses of the trace_ros nodes launch file ``name`` starts."""
    description, context = resolved(name)
    return [config_cls for node in description.entities if isinstance(node, Node)
            and text(context, node.node_package) == 'trace_ros'
            for config_cls in config_classes(node_module(text(context, node.node_executable)))]


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_arguments_are_declared_described_and_used(name):
    description, context = resolved(name)
    declared = [a for a in description.entities if isinstance(a, DeclareLaunchArgument)]
    names = [a.name for a in declared]
    assert names == [entry[0] for entry in launch_module(name).ARGUMENTS]
    assert len(names) == len(set(names))
    for argument in declared:
        assert argument.description, argument.name
        assert text(context, argument.default_value) is not None, argument.name
    used = used_configurations([e for e in description.entities
                                if not isinstance(e, DeclareLaunchArgument)]) - LAUNCH_OWN
    assert used <= set(names), f'used but not declared: {used - set(names)}'
    assert set(names) <= used, f'declared but never used: {set(names) - used}'


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_nodes_run_installed_executables_with_declared_parameters(name):
    description, context = resolved(name)
    nodes = [e for e in description.entities if isinstance(e, Node)
             and text(context, e.node_package) == 'trace_ros']
    assert nodes
    installed = installed_executables()
    for node in nodes:
        executable = text(context, node.node_executable)
        assert (ROOT / 'bin' / executable).exists(), f'bin/{executable} is missing'
        assert executable in installed, f'CMakeLists.txt does not install {executable}'
        declared = declared_parameters(node_module(executable))
        for param, value in node_parameters(node_command_line(node, context)).items():
            assert param in declared, f'{executable} does not declare a parameter {param}'
            expected = declared[param]
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                continue  # rcl reads an integer literal as a double for a double parameter
            assert isinstance(value, expected), (executable, param, value, expected)


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_arguments_named_after_a_node_parameter_have_its_default_and_description(name):
    from trace_ros.ros.parameters import descriptor, launch_string
    configs = started_configs(name)
    assert configs
    checked = 0
    for argument, default, description in launch_module(name).ARGUMENTS:
        owners = [c for c in configs if argument in {f.name for f in dataclasses.fields(c)}]
        for config_cls in owners:
            assert default == launch_string(getattr(config_cls(), argument)), argument
        if owners:
            assert description in {descriptor(c, argument).description for c in owners}
            checked += 1
    assert checked >= 7, 'the model arguments at least are trace_node parameters'


@pytest.mark.parametrize('seed, randomize', [('0', 'false'), ('7', 'true')])
def test_sim_launch_wires_trace_node_to_the_sim_and_the_executor(seed, randomize):
    from trace_ros.sim.randomization import sim_camera_pose
    description, context = resolved('sim.launch.py', seed=seed, randomize_world=randomize,
                                    namespace='robot1')
    nodes = {text(context, n.node_executable): n for n in description.entities
             if isinstance(n, Node)}
    assert set(nodes) == {'trace_sim', 'trace_goal_executor', 'trace_node'}
    params = {name: node_parameters(node_command_line(node, context))
              for name, node in nodes.items()}
    # One namespace and no remapping: trace_node's relative camera topics are the sim's, its
    # placement_goal the executor's input, the executor's placement_outcome the sim's.
    for node in nodes.values():
        assert node.expanded_node_namespace == '/robot1'
        assert not node.expanded_remapping_rules
    sim, executor, trace = (params[n] for n in ('trace_sim', 'trace_goal_executor',
                                                'trace_node'))
    assert sim['seed'] == int(seed) and sim['randomize_world'] == (randomize == 'true')
    assert sim['world_frame'] == executor['world_frame'] == trace['target_frame'] == \
        trace['static_transform_parent']
    assert sim['camera_frame'] == trace['static_transform_child']
    # trace_node takes the camera pose from its parameter: trace_sim's camera for this seed.
    assert trace['static_transform'] == pytest.approx(sim_camera_pose(int(seed), randomize),
                                                      abs=1e-9)
