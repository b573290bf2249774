"""
Compare generated data with committed data: structure exactly, numbers with a tolerance.

Floats computed on another CPU may differ in their last bits (-6.8e-17 where this one gets
0), so generated numbers are never compared as text.
"""

import math
import re
import xml.etree.ElementTree as ET

_NUMBER = re.compile(r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?')


def assert_tree_close(expected, actual, abs_tol: float, where: str = '') -> None:
    """Assert nested dicts/lists are equal, numbers (not bools) within ``abs_tol``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(expected) == set(actual), \
            f'{where}: keys {sorted(expected)} != {sorted(actual)}'
        for key in expected:
            assert_tree_close(expected[key], actual[key], abs_tol, f'{where}/{key}')
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(expected) == len(actual), \
            f'{where}: {expected!r} != {actual!r}'
        for index, (left, right) in enumerate(zip(expected, actual)):
            assert_tree_close(left, right, abs_tol, f'{where}[{index}]')
    elif _is_number(expected) and _is_number(actual):
        assert math.isclose(expected, actual, rel_tol=0.0, abs_tol=abs_tol), \
            f'{where}: {expected} != {actual} (tolerance {abs_tol})'
    else:
        assert expected == actual, f'{where}: {expected!r} != {actual!r}'


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text_values(text: str) -> list:
    """Split text into its words, numbers as floats: '0 0.1 a' -> [0.0, 0.1, 'a']."""
    return [float(word) if _NUMBER.fullmatch(word) else word for word in (text or '').split()]


def assert_xml_close(expected: ET.Element, actual: ET.Element, abs_tol: float,
                     where: str = '') -> None:
    """Assert two XML trees have the same tags, attributes and text, numbers within abs_tol."""
    where = f'{where}/{expected.tag}'
    assert actual.tag == expected.tag, f'{where}: tag {actual.tag}'
    assert_tree_close({k: text_values(v) for k, v in expected.attrib.items()},
                      {k: text_values(v) for k, v in actual.attrib.items()}, abs_tol, where)
    assert_tree_close(text_values(expected.text), text_values(actual.text), abs_tol, where)
    assert_tree_close(text_values(expected.tail), text_values(actual.tail), abs_tol, where)
    assert len(expected) == len(actual), f'{where}: {len(expected)} != {len(actual)} children'
    for left, right in zip(expected, actual):
        assert_xml_close(left, right, abs_tol, where)
