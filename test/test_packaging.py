"""Packaging: the pure-Python wheel, the colcon install space and the launch files."""

import ast
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH_FILES = ['bringup.launch.py', 'sim.launch.py', 'gazebo.launch.py']
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
# test_launch_files.py resolves them with the real launch API; test_launch.py runs them.

LAUNCH_SUPPORT = 'trace_ros.ros.launch_support'


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
