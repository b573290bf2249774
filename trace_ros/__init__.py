"""
TRACE placement for ROS 2: reasoning-then-pointing VLM answers turned into 3D goals.

The package is split across two directories at run time: the hand-written sources
(this directory, also installed by ``pip install -e .``) and the interfaces rosidl
generates (``trace_ros.msg``, ``trace_ros.action``) in the colcon install space.
Extending ``__path__`` lets both be imported as one package.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
