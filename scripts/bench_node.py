#!/usr/bin/env python3
"""
trace_node overhead per request, model excluded, at 640x480: p50/p95 per stage and in total.

Times the functions the node runs for one request, in its order, with real messages and real
publishers: frame sync (three inputs), image decoding, CameraInfo, frame checks, TF (static),
answer parsing + depth + deprojection + goal, output messages, publishing (result, goal,
points, markers, reasoning) and the optional debug image. Run after
``source scripts/env.sh``: ``python scripts/bench_node.py [--repeats N]``.
"""

import argparse
import time

from geometry_msgs.msg import PoseArray, PoseStamped
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from trace_ros.core.annotate import annotate
from trace_ros.core.answer_format import format_cor_answer
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.frames import LatestFrame
from trace_ros.core.pipeline import locate_placement, prepare_frame
from trace_ros.core.sync import ApproximateTimeSync
from trace_ros.core.transforms import RigidTransform
from trace_ros.msg import PlacementResult
from trace_ros.ros import messages
from trace_ros.ros.camera_sync import stamp_seconds
from trace_ros.ros.images import color_to_rgb, depth_to_array, depth_to_msg, rgb_to_msg
from trace_ros.ros.tf_source import TransformSource
from visualization_msgs.msg import MarkerArray

WIDTH, HEIGHT = 640, 480


def make_inputs(rng):
    """One synthetic 640x480 frame (table 1 m below) and a CoR answer with 5 points."""
    camera = PinholeCamera.from_fovy(WIDTH, HEIGHT, 60.0)
    header = Header(frame_id='camera_color_optical_frame')
    color = rgb_to_msg(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), header)
    depth_m = np.full((HEIGHT, WIDTH), 1.0, np.float32)
    depth_m[rng.random(depth_m.shape) < 0.05] = np.nan
    depth = depth_to_msg(depth_m, '16UC1', header)
    info = CameraInfo(header=header, width=WIDTH, height=HEIGHT, distortion_model='plumb_bob',
                      d=[0.0] * 5, k=camera.k.flatten().tolist())
    points = rng.uniform(0.2, 0.8, (5, 2))
    text = format_cor_answer('object reference', 'the red mug', 'left of the red mug', points,
                             reference_point=(0.5, 0.5), target_box=(0.2, 0.2, 0.8, 0.8))
    return color, depth, info, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--repeats', type=int, default=300)
    args = parser.parse_args()
    rclpy.init()
    node = Node('bench_node')
    pubs = {'result': node.create_publisher(PlacementResult, 'placement_result', 10),
            'goal': node.create_publisher(PoseStamped, 'placement_goal', 10),
            'points': node.create_publisher(PoseArray, 'placement_points', 10),
            'markers': node.create_publisher(MarkerArray, 'placement_markers', 10),
            'reasoning': node.create_publisher(String, 'reasoning', 10),
            'debug': node.create_publisher(Image, 'debug_image', 1)}
    world_from_optical = RigidTransform.from_translation_quaternion((0, 0, 1), (1, 0, 0, 0))
    tf = TransformSource(node, 'world', 'camera_color_optical_frame', world_from_optical,
                         use_tf2=False)
    frames = LatestFrame()
    sync = ApproximateTimeSync(3, 5, 0.05, lambda c, d, i: frames.put(
        stamp_seconds(c.header), c, d, i))
    rng = np.random.default_rng(0)
    color, depth, info, text = make_inputs(rng)
    stages = {}

    def timed(name, fn, *a, **kw):
        start = time.perf_counter()
        out = fn(*a, **kw)
        stages.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return out

    for k in range(args.repeats + 20):
        stamp = 1000.0 + k / 30.0
        for msg in (color, depth, info):
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
        timed('sync (3 inputs)', lambda: [sync.add(i, stamp, m)
                                          for i, m in enumerate((color, depth, info))])
        slot = frames.newest()
        rgb = timed('decode colour', color_to_rgb, slot.color)
        depth_m = timed('decode depth', depth_to_array, slot.depth)
        camera = timed('camera info', PinholeCamera.from_camera_info, info.width, info.height,
                       info.k, info.d, info.distortion_model)
        frame = timed('frame checks', prepare_frame, rgb, depth_m, camera,
                      color.header.frame_id, min_depth=0.1, max_depth=10.0)
        transform = timed('tf lookup', tf.lookup, 'world', frame.frame_id,
                          Time.from_msg(color.header.stamp))
        placement = timed('parse + depth + deproject + goal', locate_placement, frame, text,
                          transform)
        result = PlacementResult(header=color.header, reasoning=text)
        target = Header(stamp=color.header.stamp, frame_id='world')

        def build():
            messages.fill_placement(result, placement, 'world')
            return (messages.points_pose_array(placement, target),
                    messages.markers(placement, target, text))
        pose_array, marker_array = timed('messages', build)

        def publish():
            pubs['result'].publish(result)
            pubs['goal'].publish(result.goal)
            pubs['points'].publish(pose_array)
            pubs['markers'].publish(marker_array)
            pubs['reasoning'].publish(String(data=text))
        timed('publish', publish)
        timed('debug image (optional)', lambda: pubs['debug'].publish(rgb_to_msg(
            annotate(rgb, placement.pixels, goal_pixel=placement.goal_pixel, text=text),
            color.header)))
    print(f'trace_node overhead per request at {WIDTH}x{HEIGHT}, model excluded, '
          f'{args.repeats} requests (first 20 dropped as warm-up)')
    print(f'{"stage":38s} {"p50 ms":>8s} {"p95 ms":>8s}')
    total = np.zeros(args.repeats)
    total_debug = np.zeros(args.repeats)
    for name, values in stages.items():
        values = np.array(values[20:])
        print(f'{name:38s} {np.percentile(values, 50):8.3f} {np.percentile(values, 95):8.3f}')
        total_debug += values
        if 'debug' not in name:
            total += values
    for name, values in (('total (target p95 <= 5 ms)', total),
                         ('total with debug image', total_debug)):
        print(f'{name:38s} {np.percentile(values, 50):8.3f} {np.percentile(values, 95):8.3f}')
    node.destroy_node()
    rclpy.shutdown()


if __name__ == '__main__':
    main()
