"""
pip install -e . gives the pure-Python parts (core, backends, training) without ROS.

colcon builds the package with CMake (package.xml: ament_cmake); this file is not used there.
"""

from setuptools import find_packages, setup

setup(
    name='trace_ros',
    version='0.1.0',
    description='TRACE: reasoning-then-pointing placement for ROS 2 robots',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['trace_ros', 'trace_ros.*', 'trace_train', 'trace_train.*']),
    package_data={'trace_ros': ['py.typed']},
    install_requires=['numpy', 'pyyaml', 'pillow'],
    extras_require={
        'train': ['torch', 'transformers', 'tokenizers', 'peft', 'accelerate',
                  'datasets', 'tensorboard', 'matplotlib', 'tqdm'],
        'sim': ['mujoco'],
        'test': ['pytest', 'hypothesis'],
    },
    entry_points={'console_scripts': []},
)
