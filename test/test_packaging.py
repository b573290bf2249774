"""Packaging: the pure-Python wheel, the colcon install space and the launch files."""

import ast
import contextlib
import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import pathlib
import re
import signal
import subprocess
import sys
import types
import typing
import xml.etree.ElementTree as ET
import zipfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH_FILES = ['bringup.launch.py', 'sim.launch.py']
TRACE_YAML = ROOT / 'config' / 'trace.yaml'
TRACE_YAML_KEY = '/**/trace_node'


def test_pip_wheel_holds_the_pure_python_parts(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(tmp_path), str(ROOT)], check=True,
                   cwd=tmp_path)
    wheel, = tmp_path.glob('trace_ros-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ('trace_ros/core/parsing.py', 'trace_ros/core/camera.py',
                   'trace_ros/backends/base.py', 'trace_train/model/tiny_vlm.py',
                   'trace_train/train/trainer.py'):
        assert module in names
    assert not any('/msg/' in n for n in names)  # generated interfaces come from colcon


def test_colcon_install_space_has_executables_config_and_interfaces():
    prefix = ROOT / 'install' / 'trace_ros'
    for exe in ('trace_node', 'trace_sim', 'trace_goal_executor'):
        assert (prefix / 'lib' / 'trace_ros' / exe).exists(), exe
    assert (prefix / 'share' / 'trace_ros' / 'config' / 'trace.yaml').exists()
    for name in LAUNCH_FILES:
        assert (prefix / 'share' / 'trace_ros' / 'launch' / name).exists(), \
            f'{name} is not installed: run scripts/setup.sh (colcon build)'
    site = next((prefix / 'lib').glob('python3.*/site-packages'))
    assert (site / 'trace_ros' / 'msg' / '_placement_result.py').exists()


def test_config_yaml_matches_declared_parameters():
    from trace_ros.ros.params import TraceNodeConfig
    params = yaml.safe_load(TRACE_YAML.read_text())
    declared = {f.name for f in dataclasses.fields(TraceNodeConfig)}
    in_yaml = set(params[TRACE_YAML_KEY]['ros__parameters'])
    assert in_yaml <= declared, in_yaml - declared
    assert declared - in_yaml <= {'static_transform'}  # commented: an empty list has no type


@pytest.mark.ros
def test_config_yaml_reaches_trace_node_in_any_namespace(ros_domain_id):
    # Launch files take a namespace argument: the YAML's key must match /ns/trace_node too.
    import rclpy
    from rclpy.node import Node
    for namespace in ('/', '/robot1'):
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=ros_domain_id,
                   args=['--ros-args', '--params-file', str(TRACE_YAML)])
        try:
            node = Node('trace_node', namespace=namespace, context=context,
                        automatically_declare_parameters_from_overrides=True)
            assert node.get_parameter('generation_timeout').value == 30.0, namespace
            node.destroy_node()
        finally:
            rclpy.try_shutdown(context=context)


# -- launch files ---------------------------------------------------------------------------
# launch and launch_ros are not on PyPI. The launch files are run here against a recording
# stand-in of their API: every class or function imported from launch* records its
# arguments, so the tests see exactly which nodes, parameters and arguments they describe.
# Both launch files build trace_node with LAUNCH_SUPPORT, which imports launch* itself: it
# is imported afresh inside each recording block, so that it records too.

LAUNCH_SUPPORT = 'trace_ros.ros.launch_support'


class _Recorded:
    """A call to a launch API name: its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _RecordingFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import launch, launch_ros and their submodules as recording modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split('.')[0] in ('launch', 'launch_ros'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        recorded = {}

        def attribute(name):
            if name.startswith('__'):
                raise AttributeError(name)
            return recorded.setdefault(name, type(name, (_Recorded,), {'finder': self}))

        module.__getattr__ = attribute
        return module

    def exec_module(self, module):
        module.__path__ = []


@contextlib.contextmanager
def _recording_launch_api():
    """Replace launch/launch_ros by recording modules, and import LAUNCH_SUPPORT afresh."""
    def ours(name):
        return name.split('.')[0] in ('launch', 'launch_ros') or name == LAUNCH_SUPPORT

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    finder = _RecordingFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _load_launch_file(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(path.name.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recorded_launch_description(name: str):
    """Return (module, LaunchDescription entities) of a launch file run on the recorder."""
    with _recording_launch_api() as finder:
        module = _load_launch_file(ROOT / 'launch' / name)
        description = module.generate_launch_description()
    assert type(description).__name__ == 'LaunchDescription'
    # Every call was recorded by this block: none by a LAUNCH_SUPPORT left from an earlier one.
    assert all(call.finder is finder for call in _walk(description))
    return module, list(description.args[0])


def _walk(value, seen=None):
    """Yield every recorded call reachable from ``value``."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, _Recorded):
        yield value
        children = list(value.args) + list(value.kwargs.values())
    elif isinstance(value, dict):
        children = list(value.keys()) + list(value.values())
    elif isinstance(value, (list, tuple)):
        children = list(value)
    else:
        children = []
    for child in children:
        yield from _walk(child, seen)


def _calls(entities, name: str):
    return [call for call in _walk(entities) if type(call).__name__ == name]


def _declared_arguments(entities):
    return {call.args[0]: call.kwargs for call in _calls(entities, 'DeclareLaunchArgument')}


def _configuration_name(value):
    if type(value).__name__ == 'LaunchConfiguration':
        return value.args[0]
    return None


def _installed_paths():
    """Return the executables and share directories CMakeLists.txt installs."""
    cmake = (ROOT / 'CMakeLists.txt').read_text()
    programs = re.search(r'install\(PROGRAMS([^)]*)DESTINATION lib/\$\{PROJECT_NAME\}', cmake)
    executables = {pathlib.Path(p).name for p in programs.group(1).split()}
    shared = set()
    for block in re.findall(r'install\(DIRECTORY([^)]*)DESTINATION share/\$\{PROJECT_NAME\}',
                            cmake):
        shared.update(word for word in block.split() if (ROOT / word).is_dir())
    return executables, shared


def _node_module(executable: str) -> str:
    """Return the module whose main() the executable in bin/ runs."""
    tree = ast.parse((ROOT / 'bin' / executable).read_text())
    modules = [node.module for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and any(a.name == 'main' for a in node.names)]
    assert len(modules) == 1, f'bin/{executable} should import one main()'
    return modules[0]


def _declared_parameters(module_name: str) -> dict:
    """
    Return {name: type} of the parameters the node of ``module_name`` declares.

    Read from the node's code: literal declare_parameter(name, default) calls, the
    PARAMETERS table it passes to declare(), and trace_ros.ros.params.declare_parameters
    (every TraceNodeConfig field). rclpy declares use_sim_time on every node.
    """
    from trace_ros.ros.params import TraceNodeConfig
    module = importlib.import_module(module_name)
    declared = {'use_sim_time': bool}
    for call in ast.walk(ast.parse(inspect.getsource(module))):
        if not isinstance(call, ast.Call):
            continue
        func = getattr(call.func, 'attr', getattr(call.func, 'id', ''))
        if func == 'declare_parameter' and isinstance(call.args[0], ast.Constant):
            declared[call.args[0].value] = type(ast.literal_eval(call.args[1]))
        elif func == 'declare_parameters':
            defaults = TraceNodeConfig()
            declared.update({f.name: type(getattr(defaults, f.name))
                             for f in dataclasses.fields(TraceNodeConfig)})
        elif func == 'declare':
            table = getattr(module, call.args[1].id)
            declared.update({name: type(entry[0]) for name, entry in table.items()})
    assert len(declared) > 2, f'found no parameter declarations in {module_name}'
    return declared


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_launch_file_references_what_exists(name):
    path = ROOT / 'launch' / name
    ast.parse(path.read_text(), filename=str(path))
    module, entities = _recorded_launch_description(name)
    declared = _declared_arguments(entities)
    in_table = [entry[0] for entry in module.ARGUMENTS]
    assert list(declared) == in_table, 'every ARGUMENTS entry is declared once'
    for argument, kwargs in declared.items():
        assert kwargs.get('description'), f'{argument} has no description'
        assert kwargs.get('default_value') is not None, f'{argument} has no default'
    used = {_configuration_name(call) for call in _calls(entities, 'LaunchConfiguration')}
    assert used <= set(declared), f'used but not declared: {used - set(declared)}'
    assert set(declared) <= used, f'declared but never used: {set(declared) - used}'

    executables, shared = _installed_paths()
    nodes = _calls(entities, 'Node') + _calls(entities, 'LifecycleNode')
    assert nodes
    for node in nodes:
        executable = node.kwargs['executable']
        assert node.kwargs['package'] == 'trace_ros'
        assert (ROOT / 'bin' / executable).exists(), f'bin/{executable} is missing'
        assert executable in executables, f'CMakeLists.txt does not install {executable}'
        declared_params = _declared_parameters(_node_module(executable))
        for entry in node.kwargs.get('parameters', []):
            if not isinstance(entry, dict):  # a parameter file, given by a launch argument
                file_argument = declared[_configuration_name(entry)]['default_value']
                parts = file_argument.args[0]
                assert type(parts[0]).__name__ == 'FindPackageShare'
                assert parts[0].args[0] == 'trace_ros'
                assert (ROOT.joinpath(*parts[1:])).is_file(), parts[1:]
                assert parts[1] in shared, f'CMakeLists.txt does not install {parts[1]}/'
                file_params = yaml.safe_load(ROOT.joinpath(*parts[1:]).read_text())
                for node_params in file_params.values():
                    assert set(node_params['ros__parameters']) <= set(declared_params)
                continue
            for param, value in entry.items():
                assert param in declared_params, \
                    f'{executable} does not declare a parameter {param}'
                expected = declared_params[param]
                if type(value).__name__ == 'ParameterValue':  # e.g. int, or List[float]
                    value_type = value.kwargs['value_type']
                    assert (typing.get_origin(value_type) or value_type) is expected, \
                        (param, expected)
                elif not isinstance(value, _Recorded):
                    assert isinstance(value, expected), (param, value, expected)


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_launch_file_configures_then_activates_the_lifecycle_node(name):
    _, entities = _recorded_launch_description(name)
    node, = _calls(entities, 'LifecycleNode')
    assert '--no-autostart' in node.kwargs['arguments']  # the launch file drives it
    from lifecycle_msgs.msg import Transition
    changes = {call.kwargs['transition_id']: call for call in _calls(entities, 'ChangeState')}
    assert set(changes) == {Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE}
    for change in changes.values():
        assert change.kwargs['lifecycle_node_matcher'].args[0] is node
    handler, = _calls(entities, 'OnStateTransition')
    assert handler.kwargs['target_lifecycle_node'] is node
    assert handler.kwargs['goal_state'] == 'inactive'
    assert changes[Transition.TRANSITION_ACTIVATE] in list(_walk(handler))
    # The configure event is emitted at the top level, after the handler is registered.
    top = [type(e).__name__ for e in entities]
    assert top.index('RegisterEventHandler') < len(top) - 1 - top[::-1].index('EmitEvent')


def test_sim_launch_wires_trace_node_to_the_sim_and_the_executor():
    from trace_ros.sim.randomization import closed_loop_world
    from trace_ros.sim.scene import CameraConfig
    _, entities = _recorded_launch_description('sim.launch.py')
    nodes = {n.kwargs['executable']: n
             for n in _calls(entities, 'Node') + _calls(entities, 'LifecycleNode')}
    assert set(nodes) == {'trace_sim', 'trace_goal_executor', 'trace_node'}
    # One namespace and no remapping: trace_node's relative camera topics are the sim's, its
    # placement_goal the executor's input, the executor's placement_outcome the sim's.
    for node in nodes.values():
        assert _configuration_name(node.kwargs['namespace']) == 'namespace'
        assert not node.kwargs.get('remappings')

    def params(executable):
        merged = {}
        for entry in nodes[executable].kwargs['parameters']:
            if isinstance(entry, dict):
                merged.update(entry)
        return {name: _configuration_name(value.args[0])
                if type(value).__name__ == 'ParameterValue' else value
                for name, value in merged.items()}

    sim, executor, trace = (params(e) for e in ('trace_sim', 'trace_goal_executor',
                                                'trace_node'))
    assert sim['world_frame'] == executor['world_frame'] == 'world_frame'
    assert trace['target_frame'] == trace['static_transform_parent'] == 'world_frame'
    assert sim['camera_frame'] == trace['static_transform_child'] == 'camera_frame'
    # Without tf2 the node takes the camera pose from its parameter: the sim camera's, which
    # the launch computes from the seed (and randomize_world) when it runs.
    value, = [entry['static_transform'] for entry in nodes['trace_node'].kwargs['parameters']
              if isinstance(entry, dict) and 'static_transform' in entry]
    assert type(value).__name__ == 'ParameterValue'
    expression = value.args[0]
    assert type(expression).__name__ == 'PythonExpression'
    defaults = {name: kwargs['default_value']
                for name, kwargs in _declared_arguments(entities).items()}

    def evaluate(**arguments):
        text = ''.join(arguments.get(_configuration_name(part), defaults.get(
            _configuration_name(part))) if _configuration_name(part) else part
            for part in expression.args[0])
        modules = {name: importlib.import_module(name)
                   for name in expression.kwargs['python_modules']}
        return eval(text, {}, modules)

    pose = CameraConfig().camera().world_from_optical
    assert evaluate() == pytest.approx([*pose.translation, *pose.rotation])
    assert sim['seed'] == 'seed' and sim['randomize_world'] == 'randomize_world'
    drawn = closed_loop_world(7).camera.camera().world_from_optical
    assert evaluate(seed='7', randomize_world='true') == pytest.approx(
        [*drawn.translation, *drawn.rotation])


def test_only_launch_files_import_the_launch_api():
    # The package works without launch: LAUNCH_SUPPORT is the only module that imports it,
    # and only launch files import LAUNCH_SUPPORT.
    support = ROOT.joinpath(*LAUNCH_SUPPORT.split('.')).with_suffix('.py')
    sources = [p for d in ('trace_ros', 'trace_train') for p in (ROOT / d).rglob('*.py')]
    sources += [p for p in (ROOT / 'bin').iterdir() if p.is_file()]
    assert support in sources
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
            else:
                continue
            for module in modules:
                assert module != LAUNCH_SUPPORT, f'{path} imports {module}'
                if path != support:
                    assert module.split('.')[0] not in ('launch', 'launch_ros'), \
                        f'{path} imports {module}'


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_launch_file_loads_with_the_real_launch_api(name):
    # `launch` may resolve to this checkout's launch/ directory: ask for real submodules.
    reason = 'launch / launch_ros are not installed (not on PyPI; a ROS 2 install has them)'
    actions = pytest.importorskip('launch.actions', reason=reason)
    pytest.importorskip('launch_ros.actions', reason=reason)
    import launch
    module = _load_launch_file(ROOT / 'launch' / name)
    description = module.generate_launch_description()
    assert isinstance(description, launch.LaunchDescription)
    arguments = description.get_launch_arguments()
    assert all(isinstance(a, actions.DeclareLaunchArgument) for a in arguments)
    assert [a.name for a in arguments] == [entry[0] for entry in module.ARGUMENTS]
    for argument in arguments:
        assert argument.description and argument.default_value is not None, argument.name


# -- the install space as a ROS user runs it ------------------------------------------------

def _underlay_environment() -> dict:
    """Return this environment without this checkout: what a shell has before sourcing it."""
    env = dict(os.environ)
    for variable in ('PYTHONPATH', 'AMENT_PREFIX_PATH', 'CMAKE_PREFIX_PATH',
                     'COLCON_PREFIX_PATH', 'LD_LIBRARY_PATH', 'PATH'):
        entries = [e for e in env.get(variable, '').split(os.pathsep)
                   if e and not pathlib.Path(e).resolve().is_relative_to(ROOT)]
        if entries:
            env[variable] = os.pathsep.join(entries)
        else:
            env.pop(variable, None)
    return env


def _in_sourced_workspace(command: str):
    """Return the bash command line that sources install/setup.bash, then runs ``command``."""
    return ['bash', '-c', f'source {ROOT / "install" / "setup.bash"} && {command}']


@pytest.mark.ros
def test_installed_trace_node_starts_answers_and_stops_on_sigint(ros_domain_id, tmp_path):
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState
    from ros_harness import Client
    from std_msgs.msg import String
    from tiny_model import tiny_model_dir
    from trace_ros.msg import PlacementResult
    prefix = ROOT / 'install' / 'trace_ros'
    env = _underlay_environment()
    # The sourced workspace, not this checkout, provides the package.
    where = subprocess.run(
        _in_sourced_workspace('python3 -c "import trace_ros.ros.trace_node as m, '
                              'trace_ros.msg as i; print(m.__file__); print(i.__file__)"'),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, \
        f'{where.stderr}\n(is install/ stale? run scripts/setup.sh)'
    for line in where.stdout.split():
        assert pathlib.Path(line).is_relative_to(prefix), line

    log_path = tmp_path / 'trace_node.log'
    overrides = {'model': str(tiny_model_dir()), 'max_new_tokens': 8,
                 'frame_wait_timeout': 0.2, 'torch_threads': 1}
    args = ' '.join(f'-p {k}:={v}' for k, v in overrides.items())
    command = (f'exec {prefix / "lib" / "trace_ros" / "trace_node"} --ros-args --params-file '
               f'{prefix / "share" / "trace_ros" / "config" / "trace.yaml"} {args}')
    with open(log_path, 'w') as log:
        process = subprocess.Popen(_in_sourced_workspace(command), cwd=tmp_path, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    client = None
    try:
        client = Client(ros_domain_id)
        state = client.node.create_client(GetState, '/trace_node/get_state')
        results = client.collect(PlacementResult, 'placement_result')
        instructions = client.node.create_publisher(String, 'instruction', 10)
        assert client.wait_until(lambda: instructions.get_subscription_count() > 0, 60.0), \
            log_path.read_text()  # the instruction subscription exists once it is active
        assert state.wait_for_service(timeout_sec=10.0)
        future = state.call_async(GetState.Request())
        assert client.wait_until(future.done, 10.0)
        assert future.result().current_state.id == State.PRIMARY_STATE_ACTIVE
        instructions.publish(String(data='put the mug left of the bowl'))
        assert client.wait_until(lambda: results, 20.0), log_path.read_text()
        assert results[0].status == PlacementResult.STATUS_NO_FRAME, results[0].message
        assert results[0].instruction == 'put the mug left of the bowl'
    finally:
        if client is not None:
            client.close()
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f'trace_node ignored SIGINT:\n{log_path.read_text()}')
    log = log_path.read_text()
    assert code == 0, log
    assert 'Traceback' not in log, log


# -- run-time dependencies, as a ROS user installs them --------------------------------------
# package.xml's rosdep keys plus the README's one pip line must cover every module the
# installed code imports, so that the declaration cannot silently fall behind the code.

# The module a rosdep key or pip package provides, where it is not the key's own name.
_KEY_MODULES = {'tf2_ros_py': 'tf2_ros', 'python3-pil': 'PIL', 'python3-yaml': 'yaml'}
_PIP_MODULES = {'pillow': 'PIL', 'pyyaml': 'yaml'}


def _run_dependencies() -> set:
    """Return the rosdep keys package.xml declares for run time (depend, exec_depend)."""
    package = ET.parse(ROOT / 'package.xml').getroot()
    return {e.text.strip() for e in package if e.tag in ('depend', 'exec_depend')}


def _readme_pip_pins() -> dict:
    """Return {distribution: version} of the pip line in README's workspace section."""
    section = (ROOT / 'README.md').read_text().split('## Using it in a ROS 2 workspace')[1]
    lines = [line for line in section.split('\n## ')[0].splitlines()
             if line.startswith('pip install ')]
    assert len(lines) == 1, 'the workspace section has one pip line'
    assert lines[0] in (ROOT / 'docs' / 'ROS_USERS.md').read_text(), 'ROS_USERS.md differs'
    pins = [word.split('==') for word in lines[0].split()[2:]]
    assert all(len(pin) == 2 for pin in pins), f'not all pinned: {lines[0]}'
    return dict(pins)


def _imported_modules() -> dict:
    """Return {top-level module: a file importing it} of trace_ros/, launch/ and bin/."""
    sources = [p for d in ('trace_ros', 'launch') for p in (ROOT / d).rglob('*.py')]
    sources += [p for p in (ROOT / 'bin').iterdir() if p.is_file()]
    modules = {}
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                modules.setdefault(name.split('.')[0], path.relative_to(ROOT))
    return modules


def test_declared_dependencies_cover_every_import():
    keys = _run_dependencies()
    pins = _readme_pip_pins()
    pinned = dict(line.split('==') for line in
                  (ROOT / 'requirements' / 'python.txt').read_text().splitlines()
                  if line and not line.startswith('#'))
    for name, version in pins.items():
        assert pinned.get(name) == version, f'README pins {name}=={version}, ' \
            f'requirements/python.txt {pinned.get(name)}'
    by_rosdep = {_KEY_MODULES.get(k, k.removeprefix('python3-')) for k in keys}
    by_pip = {_PIP_MODULES.get(name, name) for name in pins}
    assert not by_rosdep & by_pip, 'installed twice'
    imported = _imported_modules()
    assert {'rclpy', 'numpy', 'torch', 'mujoco', 'launch_ros'} <= set(imported)
    local = {'trace_ros', '__future__'} | set(sys.stdlib_module_names)
    missing = {m: str(p) for m, p in imported.items() if m not in local | by_rosdep | by_pip}
    assert not missing, f'imported but neither in package.xml nor in the pip line: {missing}'
    # A python3-* key nothing imports is a dead declaration.
    unused = {k for k in keys if k.startswith('python3-')
              and _KEY_MODULES.get(k, k.removeprefix('python3-')) not in imported}
    assert not unused, unused


def test_declared_ros_packages_exist():
    # Every ROS package key is a package of a ROS 2 install (a misspelt key would not be).
    pytest.importorskip('launch.actions', reason='launch is not installed: source ros_extras '
                        '(../shared/ros_extras/README.md) or a ROS 2 install')
    from ament_index_python import get_packages_with_prefixes
    package = ET.parse(ROOT / 'package.xml').getroot()
    ros_keys = {e.text.strip() for e in package if e.tag.endswith('depend')
                and not e.text.startswith('python3-')}
    assert {'rclpy', 'tf2_ros_py', 'launch_ros', 'message_filters'} <= ros_keys
    unknown = ros_keys - set(get_packages_with_prefixes())
    assert not unknown, f'not ROS packages: {unknown}'
