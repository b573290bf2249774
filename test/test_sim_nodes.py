"""
trace_sim + trace_goal_executor as real processes over Fast DDS, with a client here.

The client reads the task the sim node poses, checks the camera streams and CameraInfo
against the scene's camera, sends goals on placement_goal and reads the outcomes.
"""

import json
import pathlib

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_harness import Client, start_node, stop_process
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from trace_ros.ros.goal_executor_node import TASK_QOS
from trace_ros.ros.images import depth_to_array
from trace_ros.sim.ground_truth import apply_poses, ObjectPose
from trace_ros.sim.render import RenderSettings, SceneRenderer
from trace_ros.sim.scene import CameraConfig, generate_scene, SceneConfig, TABLE_TOP_Z
from trace_ros.sim.task import PlacementTask

pytestmark = pytest.mark.ros


def goal_msg(xyz, frame='world') -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in xyz)
    msg.pose.orientation.w = 1.0
    return msg


def test_sim_node_and_goal_executor(ros_domain_id, tmp_path):
    log_dir = str(tmp_path)
    processes, client = [], None
    try:
        processes.append(start_node('trace_ros.ros.sim_node',
                                    {'seed': 1, 'rate': 4.0, 'shadows': False}, 'trace_sim',
                                    log_dir))
        processes.append(start_node('trace_ros.ros.goal_executor_node', {'settle_time': 0.6},
                                    'trace_goal_executor', log_dir))
        client = Client(ros_domain_id)
        tasks = client.collect(String, 'task', TASK_QOS)
        poses = client.collect(PoseStamped, 'camera_pose', TASK_QOS)
        colors = client.collect(Image, 'color/image_raw', qos_profile_sensor_data)
        depths = client.collect(Image, 'depth/image_raw', qos_profile_sensor_data)
        infos = client.collect(CameraInfo, 'color/camera_info', qos_profile_sensor_data)
        outcomes = client.collect(String, 'placement_outcome')
        goals = client.node.create_publisher(PoseStamped, 'placement_goal', 10)

        def logs():
            return '\n'.join(p.read_text() for p in pathlib.Path(log_dir).glob('*.log'))

        assert client.wait_until(lambda: tasks and poses and colors and depths and infos
                                 and goals.get_subscription_count() > 0, 90), logs()
        task = PlacementTask.from_json(tasks[-1].data)
        scene = generate_scene(SceneConfig(seed=1))
        assert task.scene.seed == 1 and task.held in [o.name for o in scene.objects]

        camera = scene.camera
        info, color, depth = infos[-1], colors[-1], depths[-1]
        assert info.header.frame_id == color.header.frame_id == 'camera_color_optical_frame'
        assert (info.width, info.height) == (color.width, color.height) == (640, 480)
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), camera.k, atol=1e-9)
        assert color.encoding == 'rgb8' and depth.encoding == '32FC1'
        pose = poses[-1].pose
        np.testing.assert_allclose([pose.position.x, pose.position.y, pose.position.z],
                                   camera.position, atol=1e-9)
        q = camera.world_from_optical.rotation
        assert abs(np.dot(q, [pose.orientation.x, pose.orientation.y, pose.orientation.z,
                              pose.orientation.w])) == pytest.approx(1.0)
        # The images are the scene's: they match a render made here.
        model = scene.build()
        data = scene.make_data(model)
        renderer = SceneRenderer(scene, model, RenderSettings(shadows=False))
        np.testing.assert_allclose(depth_to_array(depth), renderer.render(data).depth,
                                   atol=1e-6)

        def send(xyz, frame='world'):
            """Publish a goal; resend while the executor has not got the task yet."""
            for _ in range(20):
                before = len(outcomes)
                goals.publish(goal_msg(xyz, frame))
                assert client.wait_until(lambda: len(outcomes) > before, 30), logs()
                result = json.loads(outcomes[before].data)
                if 'no task received yet' not in result['reason']:
                    return result
                client.wait_until(lambda: False, 0.5)
            raise AssertionError('the executor never received the task')

        result = send(task.free_spot)
        assert result['success'] is True and result['stable'] and result['in_region'], result
        assert result['instruction'] == task.instruction
        np.testing.assert_allclose(result['final_pose'][:2], task.free_spot[:2], atol=0.01)

        # The sim node moved the object too: its images show the new layout.
        apply_poses(model, data, {k: ObjectPose.from_list(v)
                                  for k, v in result['object_poses'].items()})
        expected = renderer.render(data).depth
        renderer.close()
        assert client.wait_until(lambda: np.allclose(depth_to_array(depths[-1]), expected,
                                                     atol=1e-6, equal_nan=True), 20)
        assert not np.allclose(depth_to_array(depth), expected, atol=1e-6, equal_nan=True)

        x, y, _ = task.free_spot
        for xyz, frame, reason in [((x, y, TABLE_TOP_Z + 0.3), 'world', 'in the air'),
                                   ((0.0, 0.7, TABLE_TOP_Z), 'world', 'off the table'),
                                   (task.free_spot, 'base_link', 'is not the world frame')]:
            result = send(xyz, frame)
            assert result['success'] is False and reason in result['reason'], result
    finally:
        if client is not None:
            client.close()
        for process in processes:
            stop_process(process)


def test_millimetre_depth_and_segmentation(ros_domain_id, tmp_path):
    process, client = None, None
    try:
        process = start_node('trace_ros.ros.sim_node',
                             {'seed': 2, 'rate': 4.0, 'shadows': False, 'width': 320,
                              'height': 240, 'depth_encoding': '16UC1',
                              'publish_segmentation': True}, 'trace_sim', str(tmp_path))
        client = Client(ros_domain_id)
        depths = client.collect(Image, 'depth/image_raw', qos_profile_sensor_data)
        labels = client.collect(Image, 'segmentation/image_raw', qos_profile_sensor_data)
        infos = client.collect(CameraInfo, 'depth/camera_info', qos_profile_sensor_data)
        assert client.wait_until(lambda: depths and labels and infos, 90), \
            (tmp_path / 'trace_sim.log').read_text()
        depth, label = depths[-1], labels[-1]
        assert depth.encoding == '16UC1' and (depth.width, depth.height) == (320, 240)
        assert label.encoding == 'mono8'
        assert infos[-1].k[2] == pytest.approx((320 - 1) / 2)
        scene = generate_scene(SceneConfig(seed=2, camera=CameraConfig(width=320, height=240)))
        model = scene.build()
        with SceneRenderer(scene, model, RenderSettings(shadows=False)) as renderer:
            frame = renderer.render(scene.make_data(model), segmentation=True)
        millimetres = np.frombuffer(bytes(depth.data), np.uint16).reshape(240, 320)
        np.testing.assert_allclose(millimetres, np.round(frame.depth * 1000), atol=1)
        received = np.frombuffer(bytes(label.data), np.uint8).reshape(240, 320)
        np.testing.assert_array_equal(received, frame.labels)
    finally:
        if client is not None:
            client.close()
        if process is not None:
            stop_process(process)


def test_randomized_world_publishes_its_own_camera(ros_domain_id, tmp_path):
    """With randomize_world the pose, intrinsics, images and task are the drawn world's."""
    from trace_ros.sim.randomization import closed_loop_world, sim_camera_pose
    processes, client = [], None
    try:
        processes.append(start_node('trace_ros.ros.sim_node',
                                    {'seed': 4, 'rate': 4.0, 'randomize_world': True,
                                     'max_side': 240}, 'trace_sim', str(tmp_path)))
        processes.append(start_node('trace_ros.ros.goal_executor_node', {'settle_time': 0.6},
                                    'trace_goal_executor', str(tmp_path)))
        client = Client(ros_domain_id)
        tasks = client.collect(String, 'task', TASK_QOS)
        poses = client.collect(PoseStamped, 'camera_pose', TASK_QOS)
        depths = client.collect(Image, 'depth/image_raw', qos_profile_sensor_data)
        infos = client.collect(CameraInfo, 'color/camera_info', qos_profile_sensor_data)
        outcomes = client.collect(String, 'placement_outcome')
        goals = client.node.create_publisher(PoseStamped, 'placement_goal', 10)
        assert client.wait_until(lambda: tasks and poses and depths and infos
                                 and goals.get_subscription_count() > 0, 90), \
            '\n'.join(p.read_text() for p in tmp_path.glob('*.log'))
        config = closed_loop_world(4, 240)
        camera = config.camera.camera()
        task = PlacementTask.from_json(tasks[-1].data)
        assert task.scene == config and config.world is not None
        pose = poses[-1].pose
        published = [pose.position.x, pose.position.y, pose.position.z, pose.orientation.x,
                     pose.orientation.y, pose.orientation.z, pose.orientation.w]
        np.testing.assert_allclose(published, sim_camera_pose(4, 'true'), atol=1e-9)
        assert not np.allclose(published[:3], CameraConfig().position)
        info, depth = infos[-1], depth_to_array(depths[-1])
        assert (info.width, info.height) == (camera.width, camera.height)
        assert max(camera.width, camera.height) == 240
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), camera.k, atol=1e-9)
        # Deprojecting the free spot's pixel with the published K, depth and pose finds it.
        (u, v), = camera.project(np.array([task.free_spot]))[0]
        col, row = int(round(u)), int(round(v))
        k = np.reshape(info.k, (3, 3))
        ray = np.array([(col - k[0, 2]) / k[0, 0], (row - k[1, 2]) / k[1, 1], 1.0])
        world = camera.world_from_optical.apply((ray * depth[row, col])[None])[0]
        assert np.linalg.norm(world - task.free_spot) < 0.02
        for _ in range(20):
            before = len(outcomes)
            goals.publish(goal_msg(task.free_spot))
            assert client.wait_until(lambda: len(outcomes) > before, 30)
            result = json.loads(outcomes[before].data)
            if 'no task received yet' not in result['reason']:
                break
            client.wait_until(lambda: False, 0.5)
        assert result['success'] is True, result
    finally:
        if client is not None:
            client.close()
        for process in processes:
            stop_process(process)
