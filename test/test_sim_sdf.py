"""The Gazebo world matches the default MuJoCo scene; the bridge maps onto our topics."""

import math
import pathlib
import re
import xml.etree.ElementTree as ET

from approx_tree import assert_xml_close
import numpy as np
from trace_ros.core.transforms import RigidTransform
from trace_ros.sim.scene import generate_scene, number_text, SceneConfig
from trace_ros.sim.sdf import CAMERA_TOPIC, rpy_from_matrix, scene_to_sdf
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORLD = ROOT / 'sim' / 'worlds' / 'trace_tabletop.sdf'


def numbers(text):
    return np.array([float(v) for v in text.split()])


def rotation_from_rpy(roll, pitch, yaw):
    """Fixed-axis roll, then pitch, then yaw (SDF)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch),
                              math.sin(pitch), math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_rpy_round_trip():
    rotation = RigidTransform.from_translation_quaternion(
        (0, 0, 0), (0.3, -0.2, 0.5, 0.78)).rotation_matrix
    np.testing.assert_allclose(rotation_from_rpy(*rpy_from_matrix(rotation)), rotation,
                               atol=1e-12)


def test_committed_world_is_the_default_scene():
    scene = generate_scene(SceneConfig(seed=0))
    world = ET.parse(WORLD).getroot()
    assert world.tag == 'sdf' and world.get('version') == '1.9'
    models = {m.get('name'): m for m in world.find('world').findall('model')}
    assert set(models) == {'ground_plane', 'table', 'rgbd_camera'} | {
        o.name for o in scene.objects}
    for obj in scene.objects:
        model = models[obj.name]
        pose = numbers(model.find('pose').text)
        np.testing.assert_allclose(pose, [*obj.position, 0, 0, obj.yaw], atol=1e-5)
        link = model.find('link')
        assert len(link.findall('visual')) == len(link.findall('collision')) == len(
            obj.shape.parts)
        assert 0 < float(link.find('inertial/mass').text) < 5
    # The generator still produces the committed file (regenerate it when this fails): the
    # same elements, attributes and words, numbers to 1e-6 (m, rad, kg), never as text.
    assert_xml_close(world, ET.fromstring(scene_to_sdf(scene)), abs_tol=1e-6)


def test_world_numbers_do_not_depend_on_the_last_bit():
    # Rounding noise around 0 and negative zero are written as 0: the text is the same on
    # every CPU (the committed world once had -6.80789e-17 where another CPU wrote 0).
    assert [number_text(v) for v in (-6.80789e-17, 3e-18, -0.0, 0.0)] == ['0'] * 4
    assert number_text(-0.0500585) == '-0.0500585' and number_text(1.5707963) == '1.5708'
    assert number_text(1.0121979893, 12, 9) == '1.01219799'
    written = re.findall(r'(?<![\w.-])-?\d+(?:\.\d*)?(?:e[-+]?\d+)?', WORLD.read_text())
    assert len(written) > 500
    for text in written:
        assert float(text) == 0 and text == '0' or abs(float(text)) >= 1e-9, text


def test_camera_sensor_matches_the_scene_camera():
    camera = generate_scene(SceneConfig(seed=0)).camera
    model = [m for m in ET.parse(WORLD).getroot().iter('model')
             if m.get('name') == 'rgbd_camera'][0]
    pose = numbers(model.find('pose').text)
    np.testing.assert_allclose(pose[:3], camera.position, atol=1e-5)
    sensor_axes = rotation_from_rpy(*pose[3:])  # Gazebo: x forward, y left, z up
    optical = camera.rotation  # x right, y down, z forward
    np.testing.assert_allclose(sensor_axes[:, 0], optical[:, 2], atol=1e-5)
    np.testing.assert_allclose(sensor_axes[:, 1], -optical[:, 0], atol=1e-5)
    sensor = model.find('link/sensor')
    assert sensor.get('type') == 'rgbd_camera' and sensor.find('topic').text == CAMERA_TOPIC
    assert sensor.find('gz_frame_id').text == 'camera_color_optical_frame'
    width = int(sensor.find('camera/image/width').text)
    height = int(sensor.find('camera/image/height').text)
    hfov = float(sensor.find('camera/horizontal_fov').text)
    assert (width, height) == (camera.width, camera.height)
    # Gazebo derives fx from the horizontal FOV; it must equal our fy-from-fovy focal.
    assert abs((width / 2) / math.tan(hfov / 2) - camera.k[0, 0]) < 1e-3


def test_bridge_maps_gazebo_topics_onto_ours():
    entries = yaml.safe_load((ROOT / 'sim' / 'gz_bridge.yaml').read_text())
    by_ros = {e['ros_topic_name']: e for e in entries}
    for ros_topic, suffix, ros_type in [('color/image_raw', 'image', 'sensor_msgs/msg/Image'),
                                        ('depth/image_raw', 'depth_image',
                                         'sensor_msgs/msg/Image'),
                                        ('color/camera_info', 'camera_info',
                                         'sensor_msgs/msg/CameraInfo')]:
        entry = by_ros[ros_topic]
        assert entry['gz_topic_name'] == f'{CAMERA_TOPIC}/{suffix}'
        assert entry['ros_type_name'] == ros_type and entry['direction'] == 'GZ_TO_ROS'
