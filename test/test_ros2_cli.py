"""
The ros2 command line on the installed package, as a ROS user runs it.

`ros2 launch trace_ros ... --show-args` lists the launch files' arguments, and
`ros2 param describe / get / set` reach a running trace_node (started with `ros2 run`) over
DDS on a private ROS_DOMAIN_ID. ros2cli and launch come from a ROS 2 install or ros_extras
(../shared/ros_extras/README.md); without them the tests skip.
"""

import math
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
REASON = ('the ros2 CLI or launch is not installed: source a ROS 2 install or ros_extras '
          '(../shared/ros_extras/README.md)')
ARGUMENT = re.compile(r"^    '(?P<name>[^']+)':\n        (?P<description>.+)\n"
                      r'        \(default: (?P<default>.*)\)$', re.M)


def _ros2() -> str:
    pytest.importorskip('launch.actions', reason=REASON)
    pytest.importorskip('ros2cli', reason=REASON)
    ros2 = shutil.which('ros2')
    if ros2 is None:
        pytest.skip(REASON)
    return ros2


def _ros2_run(*args, cwd, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([_ros2(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _ros2_until_found(*args, cwd, process, log_path, timeout=90) -> str:
    """
    Run a `ros2 param` verb on /trace_node until it finds the node; return its output.

    Each --no-daemon call discovers the graph afresh and may miss a node that just started.
    """
    deadline = time.monotonic() + timeout
    while True:
        run = _ros2_run('param', *args[:1], '--no-daemon', '/trace_node', *args[1:], cwd=cwd)
        output = run.stdout + run.stderr  # a refused `set` says why on stderr, exit code 1
        if output.strip() and 'Node not found' not in output:
            return output
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, run.stdout + run.stderr + log_path.read_text()
        time.sleep(1)


@pytest.mark.parametrize('name', ['bringup.launch.py', 'sim.launch.py', 'gazebo.launch.py'])
def test_show_args_lists_every_argument_with_its_description(name, tmp_path):
    run = _ros2_run('launch', 'trace_ros', name, '--show-args', cwd=tmp_path)  # or skip
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    assert run.returncode == 0, run.stdout + run.stderr
    shown = {m['name']: m for m in ARGUMENT.finditer(run.stdout)}
    # The installed file shows what the source declares, in order, with descriptions.
    declared = get_launch_description_from_python_launch_file(
        str(ROOT / 'launch' / name)).get_launch_arguments()
    assert list(shown) == [argument.name for argument in declared]
    for argument in declared:
        assert shown[argument.name]['description'] == argument.description
        default = argument.default_value
        if len(default) == 1 and type(default[0]).__name__ == 'TextSubstitution':
            assert shown[argument.name]['default'] == repr(default[0].text), argument.name
    assert 'namespace' in shown and 'model' in shown


def _described(text: str) -> dict:
    """Parse `ros2 param describe` output into {name: {field: value}}."""
    described = {}
    for block in text.split('Parameter name: ')[1:]:
        name, *lines = block.splitlines()
        described[name.strip()] = dict(line.strip().split(': ', 1) for line in lines
                                       if ': ' in line)
    return described


@pytest.mark.ros
def test_param_describe_get_and_set_on_a_running_trace_node(ros_domain_id, tmp_path):
    from trace_ros.ros.parameters import descriptor
    from trace_ros.ros.params import TraceNodeConfig
    ros2 = _ros2()
    names = ['max_frame_age', 'max_new_tokens', 'camera_reliability']
    log_path = tmp_path / 'trace_node.log'
    with open(log_path, 'w') as log:
        # --no-autostart: the parameters are declared at start; no model needs to load.
        process = subprocess.Popen(
            [ros2, 'run', 'trace_ros', 'trace_node', '--no-autostart', '--ros-args',
             '-p', 'max_new_tokens:=64'], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        found = {'cwd': tmp_path, 'process': process, 'log_path': log_path}
        text = _ros2_until_found('describe', *names, **found)
        described = _described(text)
        assert set(described) == set(names), text
        types = {'max_frame_age': 'double', 'max_new_tokens': 'integer',
                 'camera_reliability': 'string'}
        for name in names:
            expected = descriptor(TraceNodeConfig, name)
            assert described[name]['Type'] == types[name]
            assert described[name]['Description'] == expected.description
            for ranges in (expected.floating_point_range, expected.integer_range):
                for limits in ranges:
                    for field, value in (('Min value', limits.from_value),
                                         ('Max value', limits.to_value)):
                        assert math.isclose(float(described[name][field]), value), (name, field)
        assert 'One of: best_effort, reliable.' in described['camera_reliability']['Description']
        assert 'Min value' not in described['camera_reliability']

        got = _ros2_until_found('get', 'max_new_tokens', **found)
        assert int(got.split(':')[-1]) == 64, got  # the -p override
        refused = _ros2_until_found('set', 'max_frame_age', '0.001', **found)
        assert 'Setting parameter failed' in refused, refused  # out of its range
        kept = _ros2_until_found('get', 'max_frame_age', **found)
        assert math.isclose(float(kept.split(':')[-1]), 0.5), kept
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f'trace_node ignored SIGINT:\n{log_path.read_text()}')
    log = log_path.read_text()
    assert code == 0 and 'Traceback' not in log, log
