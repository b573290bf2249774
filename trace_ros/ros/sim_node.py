"""
trace_sim: a simulated RGB-D camera over a MuJoCo tabletop scene, and its placement task.

Publishes colour (rgb8), depth (32FC1 metres or 16UC1 millimetres) and CameraInfo with
sensor-data QoS at ``rate`` Hz in the REP 103 optical frame ``camera_frame``; the camera
pose T_world_optical latched on ``camera_pose`` (and on /tf_static when tf2_ros is
installed); the scene's placement task (instruction + ground-truth target region, JSON)
latched on ``task``. With ``randomize_world`` the whole world, camera included, comes from
``randomization.closed_loop_world(seed)`` and the camera's sensor effects apply to the
colour image. Outcomes from the goal executor (``placement_outcome``) move the
objects here too, so the images show where things ended. Parameters are read at start-up.
"""

import collections
import dataclasses
import json
import threading
import time

from geometry_msgs.msg import PoseStamped, TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from trace_ros.ros.images import depth_to_msg, rgb_to_msg
from trace_ros.ros.parameters import declare_parameters, read_config
from trace_ros.ros.sim_params import SimConfig
from trace_ros.ros.spin import spin_node
from trace_ros.sim.ground_truth import apply_poses, ObjectPose
from trace_ros.sim.randomization import closed_loop_world
from trace_ros.sim.render import RenderSettings, SceneRenderer
from trace_ros.sim.scene import CameraConfig, generate_scene, SceneConfig
from trace_ros.sim.sensor import apply_sensor, SensorConfig
from trace_ros.sim.task import HARD_RELATIONS, make_task, RELATIONS

try:
    from tf2_ros import StaticTransformBroadcaster
except ImportError:  # tf2 is not installable from PyPI; real ROS 2 installs have it
    StaticTransformBroadcaster = None

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def camera_info(camera, header: Header) -> CameraInfo:
    """Build the CameraInfo of an ideal camera (no distortion; pixel centres on integers)."""
    k = [float(v) for v in camera.k.ravel()]
    return CameraInfo(header=header, width=camera.width, height=camera.height,
                      distortion_model='plumb_bob', d=[0.0] * 5, k=k,
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0])


class SimNode(Node):
    """Renders the scene at a fixed rate and publishes it as an RGB-D camera."""

    def __init__(self, **kwargs):
        super().__init__('trace_sim', **kwargs)
        declare_parameters(self, SimConfig)
        p = self.params = read_config(self, SimConfig)
        if p.randomize_world:
            config = closed_loop_world(p.seed, p.max_side)
            config = dataclasses.replace(config, robot=config.robot and p.robot)
        else:
            camera = CameraConfig(p.width, p.height, p.fovy_deg, tuple(p.camera_position),
                                  tuple(p.camera_look_at))
            config = SceneConfig(p.seed, p.num_objects, p.robot, camera=camera)
        self.scene = generate_scene(config)
        world = self.scene.config.world
        self.sensor = world.sensor if world is not None else SensorConfig()
        self.task = make_task(self.scene, p.task_index,
                              HARD_RELATIONS if p.relations == 'hard' else RELATIONS)
        self.model = self.scene.build()
        self.data = self.scene.make_data(self.model)
        shadows = p.shadows and (world is None or world.shadows)
        self.renderer = SceneRenderer(self.scene, self.model, RenderSettings(shadows, p.msaa))
        self.camera = self.scene.camera
        sensor = qos_profile_sensor_data
        self._pubs = {'color': self.create_publisher(Image, 'color/image_raw', sensor),
                      'depth': self.create_publisher(Image, 'depth/image_raw', sensor),
                      'info': self.create_publisher(CameraInfo, 'color/camera_info', sensor),
                      'depth_info': self.create_publisher(CameraInfo, 'depth/camera_info',
                                                          sensor)}
        if p.publish_segmentation:
            self._pubs['labels'] = self.create_publisher(Image, 'segmentation/image_raw',
                                                         sensor)
        self._publish_latched()
        self.create_subscription(String, 'placement_outcome', self._on_outcome, 10)
        self.frames = 0
        self.render_seconds = collections.deque(maxlen=1000)  # wall time of each render
        self._render_lock = threading.Lock()
        self._timer = self.create_timer(1.0 / p.rate, self._publish_frame)
        self.get_logger().info(
            f'scene seed {p.seed}: {", ".join(o.label for o in self.scene.objects)}; '
            f'task: "{self.task.instruction}"'
            + (f'; randomized view {world.view}' if world is not None else ''))

    def _publish_latched(self) -> None:
        p, t = self.params, self.camera.world_from_optical
        pose = PoseStamped()
        pose.header.frame_id = p.world_frame
        pose.header.stamp = self.get_clock().now().to_msg()
        (pose.pose.position.x, pose.pose.position.y, pose.pose.position.z) = (
            float(v) for v in t.translation)
        q = pose.pose.orientation
        q.x, q.y, q.z, q.w = (float(v) for v in t.rotation)
        self._camera_pose_pub = self.create_publisher(PoseStamped, 'camera_pose', LATCHED)
        self._camera_pose_pub.publish(pose)
        task = json.loads(self.task.to_json())
        task['frame_id'] = p.world_frame
        self._task_pub = self.create_publisher(String, 'task', LATCHED)
        self._task_pub.publish(String(data=json.dumps(task)))
        values = [round(v, 6) for v in t.as_list()]
        self.get_logger().info(
            f'camera pose for trace_node: static_transform_parent: {p.world_frame}, '
            f'static_transform_child: {p.camera_frame}, static_transform: {values}')
        if StaticTransformBroadcaster is not None:
            transform = TransformStamped(header=pose.header, child_frame_id=p.camera_frame)
            transform.transform.translation.x = pose.pose.position.x
            transform.transform.translation.y = pose.pose.position.y
            transform.transform.translation.z = pose.pose.position.z
            transform.transform.rotation = pose.pose.orientation
            self._tf_static = StaticTransformBroadcaster(self)
            self._tf_static.sendTransform(transform)

    def _on_outcome(self, msg: String) -> None:
        try:
            poses = json.loads(msg.data).get('object_poses', {})
            apply_poses(self.model, self.data, {
                name: ObjectPose.from_list(pose) for name, pose in poses.items()
                if name in {o.name for o in self.scene.objects}})
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().warning(f'ignoring a malformed placement outcome: {exc}')

    def _publish_frame(self) -> None:
        with self._render_lock:  # destroy_node waits for a frame in flight
            if not self._timer.is_canceled():
                self._render_and_publish()

    def _render_and_publish(self) -> None:
        labels = 'labels' in self._pubs
        start = time.perf_counter()
        frame = self.renderer.render(self.data, segmentation=labels)
        if not self.sensor.is_identity:  # noise drawn anew each frame, from the seed
            frame.rgb = apply_sensor(frame.rgb, self.sensor, self.params.seed + self.frames)
        self.render_seconds.append(time.perf_counter() - start)
        header = Header(frame_id=self.params.camera_frame,
                        stamp=self.get_clock().now().to_msg())
        self._pubs['color'].publish(rgb_to_msg(frame.rgb, header))
        self._pubs['depth'].publish(depth_to_msg(frame.depth, self.params.depth_encoding,
                                                 header))
        info = camera_info(self.camera, header)
        self._pubs['info'].publish(info)
        self._pubs['depth_info'].publish(info)
        if labels:
            msg = Image(header=header, height=frame.labels.shape[0],
                        width=frame.labels.shape[1], encoding='mono8',
                        step=frame.labels.shape[1], data=frame.labels.tobytes())
            self._pubs['labels'].publish(msg)
        self.frames += 1

    def destroy_node(self) -> None:
        """Stop rendering and free the renderer's GL context with the node."""
        with self._render_lock:
            self._timer.cancel()
            self.renderer.close()
            super().destroy_node()


def main(args=None):
    """Run trace_sim until interrupted."""
    spin_node(SimNode, args)


if __name__ == '__main__':
    main()
