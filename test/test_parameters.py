"""
The parameters of the three nodes, declared from their config dataclasses on a real node.

Descriptors carry the description, choices and range; read_config() gives back the
defaults and refuses, by name, a value outside a range or the choices; launch arguments
and config/trace.yaml have the dataclasses' defaults.
"""

import dataclasses
import pathlib

import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from trace_ros.ros.parameters import (declare_parameters, descriptor, launch_arguments, param,
                                      read_config)
from trace_ros.ros.params import TraceNodeConfig
from trace_ros.ros.sim_params import GoalExecutorConfig, SimConfig
import yaml

pytestmark = pytest.mark.ros

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = [TraceNodeConfig, SimConfig, GoalExecutorConfig]


@pytest.fixture
def make_node(ros_domain_id):
    """Return make(*overrides): a node in its own context, given ``-p`` overrides."""
    made = []

    def make(*overrides):
        context = rclpy.Context()
        args = ['--ros-args'] + [a for override in overrides for a in ('-p', override)]
        rclpy.init(context=context, domain_id=ros_domain_id, args=args)
        node = Node('parameters_test', context=context)
        made.append((node, context))
        return node

    yield make
    for node, context in made:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize('config_cls', CONFIGS, ids=lambda c: c.__name__)
def test_declared_parameters_read_back_as_the_defaults(make_node, config_cls):
    node = make_node()
    declare_parameters(node, config_cls)
    assert read_config(node, config_cls) == config_cls()
    for field in dataclasses.fields(config_cls):
        described = node.describe_parameters([field.name])[0]
        assert described.description == descriptor(config_cls, field.name).description
        assert described.description.strip(), field.name


def test_descriptors_carry_description_choices_and_ranges(make_node):
    node = make_node()
    declare_parameters(node, TraceNodeConfig)
    reliability, depth, tokens, transform = node.describe_parameters(
        ['camera_reliability', 'max_depth', 'max_new_tokens', 'static_transform'])
    assert reliability.description == (
        'QoS reliability of the camera subscriptions. One of: best_effort, reliable.')
    assert not reliability.floating_point_range and not reliability.integer_range
    assert [(r.from_value, r.to_value) for r in depth.floating_point_range] == [(0.01, 1000.0)]
    assert [(r.from_value, r.to_value, r.step) for r in tokens.integer_range] == [(1, 8192, 1)]
    # An empty list has no type: static_transform is declared a double array, unset.
    assert transform.type == Parameter.Type.DOUBLE_ARRAY.value
    assert read_config(node, TraceNodeConfig).static_transform == []


def test_overrides_are_read_into_the_config(make_node):
    node = make_node('max_depth:=4.5', 'camera_reliability:=reliable',
                     'static_transform:=[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]')
    declare_parameters(node, TraceNodeConfig)
    config = read_config(node, TraceNodeConfig)
    assert (config.max_depth, config.camera_reliability) == (4.5, 'reliable')
    assert config.static_transform == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert isinstance(config.static_transform, list)


def test_a_value_out_of_range_is_a_value_error_naming_the_parameter(make_node):
    node = make_node('max_depth:=2000.0')
    with pytest.raises(ValueError, match='max_depth'):
        declare_parameters(node, TraceNodeConfig)  # rclpy enforces the declared range
    node = make_node('settle_time:=20.0')
    with pytest.raises(ValueError, match='settle_time'):
        declare_parameters(node, GoalExecutorConfig)


def test_read_config_checks_ranges_and_choices_itself(make_node):
    @dataclasses.dataclass
    class Demo:
        gain: float = param(1.0, 'A gain.', range=(0.0, 2.0))
        mode: str = param('a', 'A mode.', choices=('a', 'b'))

    node = make_node()
    node.declare_parameter('gain', 5.0)  # declared without the range
    node.declare_parameter('mode', 'a')
    with pytest.raises(ValueError, match=r'parameter gain=5.0 is out of range \[0.0, 2.0\]'):
        read_config(node, Demo)
    node.set_parameters([Parameter('gain', value=1.5), Parameter('mode', value='c')])
    with pytest.raises(ValueError, match="parameter mode='c' is not one of a, b"):
        read_config(node, Demo)


def test_a_bad_choice_is_a_value_error_naming_the_parameter(make_node):
    # rclpy does not enforce choices: read_config does, at start-up and on reconfigure.
    node = make_node('camera_reliability:=sometimes')
    declare_parameters(node, TraceNodeConfig)
    with pytest.raises(ValueError, match="parameter camera_reliability='sometimes' is not one "
                                         'of best_effort, reliable'):
        read_config(node, TraceNodeConfig)
    node = make_node()
    declare_parameters(node, SimConfig)
    node.set_parameters([Parameter('relations', value='odd')])
    with pytest.raises(ValueError, match="parameter relations='odd' is not one of normal, hard"):
        read_config(node, SimConfig)


@pytest.mark.parametrize('values, message', [
    ({'min_depth': 5.0, 'max_depth': 1.0}, 'min_depth must be smaller than max_depth'),
    ({'depth_window': 4}, 'depth_window must be odd'),
    ({'generation_options': '[1]'}, 'generation_options must be a JSON object'),
    ({'generation_options': '{'}, 'generation_options is not valid JSON'),
    ({'model_profile': 'nonesuch'}, "parameter model_profile='nonesuch' is not one of auto"),
    ({'obstacle_height': 0.002, 'support_tolerance': 0.003},
     'obstacle_height must be larger than support_tolerance'),
])
def test_trace_node_checks_across_parameters(make_node, values, message):
    node = make_node()
    declare_parameters(node, TraceNodeConfig)
    results = node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    assert all(result.successful for result in results)
    with pytest.raises(ValueError, match=message):
        read_config(node, TraceNodeConfig)


def test_sim_camera_vectors_need_three_values(make_node):
    node = make_node('camera_position:=[1.0, 2.0]')
    declare_parameters(node, SimConfig)
    with pytest.raises(ValueError, match=r'parameter camera_position needs 3 values'):
        read_config(node, SimConfig)


def test_param_refuses_a_default_outside_its_choices_or_range():
    with pytest.raises(ValueError):
        param('c', 'A mode.', choices=('a', 'b'))
    with pytest.raises(ValueError):
        param(3, 'A count.', range=(0, 2))


@pytest.mark.parametrize('config_cls', CONFIGS, ids=lambda c: c.__name__)
def test_launch_arguments_have_the_dataclass_defaults(config_cls):
    names = [f.name for f in dataclasses.fields(config_cls)]
    arguments = launch_arguments(config_cls, names)
    assert [name for name, _, _ in arguments] == names
    defaults = config_cls()
    for name, default, description in arguments:
        value = getattr(defaults, name)
        assert isinstance(default, str)
        assert description == descriptor(config_cls, name).description
        if isinstance(value, bool):
            assert default == ('true' if value else 'false')
        elif isinstance(value, str):
            assert default == value
        else:  # numbers and lists: as YAML reads a launch argument
            assert yaml.safe_load(default) == value, name


def test_config_yaml_has_the_dataclass_defaults():
    shipped = yaml.safe_load((ROOT / 'config' / 'trace.yaml').read_text())
    defaults = TraceNodeConfig()
    for name, value in shipped['/**/trace_node']['ros__parameters'].items():
        assert getattr(defaults, name) == value, name
        assert type(getattr(defaults, name)) is type(value), name
