"""Packaging: the pure-Python wheel, the colcon install space and the launch files."""

import ast
import dataclasses
import pathlib
import subprocess
import sys
import zipfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_pip_wheel_holds_the_pure_python_parts(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(tmp_path), str(ROOT)], check=True,
                   cwd=tmp_path)
    wheel, = tmp_path.glob('trace_ros-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ('trace_ros/core/parsing.py', 'trace_ros/core/camera.py',
                   'trace_ros/backends/base.py', 'trace_train/tiny_vlm.py'):
        assert module in names
    assert not any('/msg/' in n for n in names)  # generated interfaces come from colcon


def test_colcon_install_space_has_executables_config_and_interfaces():
    prefix = ROOT / 'install' / 'trace_ros'
    for exe in ('trace_node', 'trace_sim', 'trace_goal_executor'):
        assert (prefix / 'lib' / 'trace_ros' / exe).exists(), exe
    assert (prefix / 'share' / 'trace_ros' / 'config' / 'trace.yaml').exists()
    assert (prefix / 'share' / 'trace_ros' / 'launch' / 'bringup.launch.py').exists()
    site = next((prefix / 'lib').glob('python3.*/site-packages'))
    assert (site / 'trace_ros' / 'msg' / '_placement_result.py').exists()


def _launch_arguments(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            return [elt.elts[0].value for elt in node.value.elts]
    return []


def test_bringup_launch_references_what_exists():
    path = ROOT / 'launch' / 'bringup.launch.py'
    text = path.read_text()
    ast.parse(text)
    assert "executable='trace_node'" in text
    assert (ROOT / 'bin' / 'trace_node').exists()
    config = yaml.safe_load((ROOT / 'config' / 'trace.yaml').read_text())
    params = config['trace_node']['ros__parameters']
    for name in ('backend', 'model', 'device', 'openai_base_url', 'openai_model',
                 'prompt_style', 'target_frame'):
        assert name in _launch_arguments(path)
        assert name in params, f'{name} missing from config/trace.yaml'


def test_config_yaml_matches_declared_parameters():
    from trace_ros.ros.params import TraceNodeConfig
    params = yaml.safe_load((ROOT / 'config' / 'trace.yaml').read_text())
    declared = {f.name for f in dataclasses.fields(TraceNodeConfig)}
    in_yaml = set(params['trace_node']['ros__parameters'])
    assert in_yaml <= declared, in_yaml - declared
    assert declared - in_yaml <= {'static_transform'}  # commented: an empty list has no type
