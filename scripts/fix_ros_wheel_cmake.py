"""
Point the ROS wheels' CMake exports at this venv's Python and numpy include dirs.

The ros-kilted-* wheels were built on a box whose include dirs
(/opt/python/cp311-cp311/...) are hard-coded in their ``*Export.cmake`` files;
CMake's generate step fails on them unless they are rewritten once per venv.
"""

import pathlib
import re
import sys
import sysconfig

import numpy

BUILD_BOX_INCLUDES = re.compile(r'/opt/python/cp\d+-cp\d+/[^;"]*')


def local_include(path: str) -> str:
    """Map one include dir of the wheel build box to its equivalent here."""
    if 'numpy' in path:
        return numpy.get_include()
    return sysconfig.get_paths()['include']


def main(venv: str) -> int:
    fixed = 0
    for path in pathlib.Path(venv, 'share').rglob('*Export.cmake'):
        text = path.read_text()
        new = BUILD_BOX_INCLUDES.sub(lambda m: local_include(m.group(0)), text)
        if new != text:
            path.write_text(new)
            fixed += 1
    print(f'fixed include dirs in {fixed} CMake export files')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
