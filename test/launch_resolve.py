"""
Launch files resolved with the real launch API, as `ros2 launch` would, without running them.

A launch file is loaded from the source tree, its arguments are set in a LaunchContext, and
each node's command line (parameter files, -p overrides, namespace, remappings) is
resolved: what the tests check is what the processes would be started with.
"""

import pathlib

from launch import LaunchContext
from launch.launch_description_sources import get_launch_description_from_python_launch_file
from launch.substitutions import LaunchConfiguration
from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


class ParamsLoader(yaml.SafeLoader):
    """Read parameter files as rcl does: launch_ros writes list values as python/tuple."""


ParamsLoader.add_constructor('tag:yaml.org,2002:python/tuple',
                             lambda loader, node: loader.construct_sequence(node))


def resolved(name: str, **arguments):
    """Load launch/NAME; return (description, context) with ``arguments`` and defaults set."""
    description = get_launch_description_from_python_launch_file(str(ROOT / 'launch' / name))
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    for argument in description.get_launch_arguments():
        argument.visit(context)  # sets its default unless given
    return description, context


def text(context: LaunchContext, value) -> str:
    """Resolve a substitution (or list of them, or a string) to its text."""
    return perform_substitutions(context, normalize_to_list_of_substitutions(value))


def node_command_line(node, context: LaunchContext) -> list:
    """Return the node's command line after its executable, as launch would run it."""
    node._perform_substitutions(context)  # name, namespace, parameter files, remappings
    context.extend_locals({'ros_specific_arguments': {
        'name': '__node:=NAME', 'ns': f'__ns:={node.expanded_node_namespace}'}})
    return [perform_substitutions(context, part) for part in node.cmd[1:]]


def node_parameters(argv: list) -> dict:
    """Merge the parameters a command line passes (files, then -p), later ones winning."""
    merged = {}
    for flag, value in zip(argv, argv[1:]):
        if flag == '--params-file':
            path = pathlib.Path(value)
            assert path.is_file(), value
            for entry in yaml.load(path.read_text(), Loader=ParamsLoader).values():
                merged.update(entry['ros__parameters'])
            if path.name.startswith('launch_params_'):  # written by launch_ros for this call
                path.unlink()
        elif flag == '-p':
            name, value_text = value.split(':=', 1)
            merged[name] = yaml.safe_load(value_text)
    return merged


def share_directory() -> pathlib.Path:
    """Return trace_ros's installed share directory."""
    from ament_index_python.packages import get_package_share_directory
    return pathlib.Path(get_package_share_directory('trace_ros'))


def installed_source(path: str) -> pathlib.Path:
    """Assert ``path`` is in the installed share directory and is the source tree's file."""
    path = pathlib.Path(path)
    assert path.is_file(), path
    relative = path.relative_to(share_directory())
    assert path.read_bytes() == (ROOT / relative).read_bytes(), relative
    return relative


def used_configurations(value, seen=None) -> set:
    """Return the names of every LaunchConfiguration reachable from ``value``'s attributes."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, (str, bytes, int, float, bool, type(None))):
        return set()
    seen.add(id(value))
    if isinstance(value, LaunchConfiguration):
        return {''.join(getattr(part, 'text', '?') for part in value.variable_name)}
    if isinstance(value, dict):
        children = list(value.keys()) + list(value.values())
    elif isinstance(value, (list, tuple, set)):
        children = list(value)
    elif hasattr(value, '__dict__') and type(value).__module__.split('.')[0] in (
            'launch', 'launch_ros'):
        children = list(vars(value).values())
    else:
        children = []
    names = set()
    for child in children:
        names |= used_configurations(child, seen)
    return names
