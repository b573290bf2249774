"""The training code's import graph: no cycles, the library never imports experiments/."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('trace_train', 'experiments')
MAX_LINES = 400


def module_name(path: pathlib.Path) -> str:
    """Return the dotted module name of a source file under ROOT."""
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def modules() -> dict:
    """Return {module name: path} of every module of ``PACKAGES``."""
    return {module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob('*.py'))}


def imports(path: pathlib.Path, known: dict) -> set:
    """Return the known modules ``path`` imports anywhere (module level or in a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f'{node.module}.{alias.name}' for alias in node.names] + [node.module]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def test_no_module_imports_itself_through_others():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    state, cycles = {}, []

    def visit(name, trail):
        state[name] = 'open'
        for other in sorted(graph[name]):
            if state.get(other) == 'open':
                cycles.append(trail[trail.index(other):] + [other])
            elif other not in state:
                visit(other, trail + [other])
        state[name] = 'done'

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles
    assert len(graph) > 30 and graph['trace_train.finetune']  # the walk saw the real modules
    library = [name for name in graph if name.startswith('trace_train')]
    assert not [(name, other) for name in library for other in graph[name]
                if other.startswith('experiments')]


def test_library_modules_stay_short():
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules().items()
               if name.startswith('trace_train')}
    assert not {name: n for name, n in lengths.items() if n > MAX_LINES}
