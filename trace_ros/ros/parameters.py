"""
Node parameters declared once, as the fields of a config dataclass.

Each field is ``name: type = param(default, description, choices=..., range=...)``.
declare_parameters() declares the fields on a node with descriptors (``ros2 param describe``
shows the description, choices and range; rclpy enforces the range), read_config() reads
them back into the dataclass and validates them, and launch_arguments() gives launch files
the same names, defaults and descriptions. A config class may define ``validate()`` for
checks across fields; read_config() calls it last.
"""

import dataclasses
import typing

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterValueException, ParameterUninitializedException
from rclpy.parameter import Parameter

# A list parameter whose default is empty is declared by type (an empty list has none).
_ARRAY_TYPES = {float: Parameter.Type.DOUBLE_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                str: Parameter.Type.STRING_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


def param(default, description: str, *, choices=None, range=None):  # noqa: A002
    """
    Return the dataclass field of a node parameter.

    ``choices`` (strings) are appended to the description and checked by read_config();
    ``range`` (low, high) bounds an int or float parameter. A list default is copied for
    each config.
    """
    if choices is not None and default not in choices:
        raise ValueError(f'default {default!r} is not one of {choices}')
    if range is not None and not range[0] <= default <= range[1]:
        raise ValueError(f'default {default!r} is out of range {range}')
    metadata = {'description': description, 'choices': choices and tuple(choices),
                'range': range and tuple(range)}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _fields(config_cls) -> dict:
    """Return {name: field} of ``config_cls`` (every field is a param()), in order."""
    return {f.name: f for f in dataclasses.fields(config_cls)}


def _default(field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def parameter_type(config_cls, name: str):
    """Return the annotated type of parameter ``name`` (e.g. ``int``, ``List[float]``)."""
    return typing.get_type_hints(config_cls)[name]


def descriptor(config_cls, name: str) -> ParameterDescriptor:
    """Return the ParameterDescriptor of ``name``: description (with choices) and range."""
    field = _fields(config_cls)[name]
    choices, bounds = field.metadata['choices'], field.metadata['range']
    description = field.metadata['description']
    if choices:
        description += f' One of: {", ".join(choices)}.'
    result = ParameterDescriptor(description=description)
    if bounds and parameter_type(config_cls, name) is float:
        result.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]),
                                                          to_value=float(bounds[1]))]
    elif bounds:
        result.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1], step=1)]
    return result


def declare_parameters(node, config_cls) -> None:
    """
    Declare every parameter of ``config_cls`` on ``node`` with its default and descriptor.

    A value given to the node (``-p``, a params file) outside a range is a ValueError.
    """
    for name, field in _fields(config_cls).items():
        value = _default(field)
        if value == []:
            value = _ARRAY_TYPES[typing.get_args(parameter_type(config_cls, name))[0]]
        try:
            node.declare_parameter(name, value, descriptor(config_cls, name))
        except InvalidParameterValueException as exc:  # rclpy's reason names the parameter
            reason = str(exc).split('Reason: ', 1)[-1].removesuffix(f': {name}')
            raise ValueError(reason if name in reason else f'{name}: {reason}') from exc


def check(config) -> None:
    """Raise ValueError naming the first parameter of ``config`` outside its choices or range."""
    for name, field in _fields(type(config)).items():
        value, choices, bounds = (getattr(config, name), field.metadata['choices'],
                                  field.metadata['range'])
        if choices and value not in choices:
            raise ValueError(f"parameter {name}='{value}' is not one of {', '.join(choices)}")
        if bounds and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f'parameter {name}={value} is out of range '
                             f'[{bounds[0]}, {bounds[1]}]')
    if hasattr(config, 'validate'):
        config.validate()


def read_config(node, config_cls):
    """Read the parameters declared by declare_parameters() into a checked ``config_cls``."""
    values = {}
    for name, field in _fields(config_cls).items():
        try:
            value = node.get_parameter(name).value
        except ParameterUninitializedException:  # a list declared by type and never set
            value = None
        if isinstance(_default(field), list):
            value = _default(field) if value is None else list(value)
        values[name] = value
    config = config_cls(**values)
    check(config)
    return config


def launch_string(value) -> str:
    """Write a parameter value as a launch argument: true/false, [a, b], or str()."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return f'[{", ".join(launch_string(v) for v in value)}]'
    return str(value)


def launch_arguments(config_cls, names) -> list:
    """Return the (name, default, description) launch arguments of parameters ``names``."""
    fields = _fields(config_cls)
    return [(name, launch_string(_default(fields[name])),
             descriptor(config_cls, name).description) for name in names]
