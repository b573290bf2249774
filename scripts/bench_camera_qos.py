#!/usr/bin/env python3
"""
Camera frames that reach trace_node's camera subscriptions, per publisher/subscriber QoS.

For each combination a publisher process sends --frames synthetic 640x480 frames (rgb8 +
16UC1 + CameraInfo, one stamp each) at --rate Hz once the subscriber is matched, and a
subscriber process runs trace_node's own CameraSync with the shipped parameters
(config/trace.yaml) or a given reliability, counting the complete frame triples it gets.
Both processes see this shell's environment (``source scripts/env.sh`` ships the Fast DDS
profile config/fastdds_profile.xml); ``--no-profile`` runs them with Fast DDS defaults.
"""

import argparse
import json
import os
import subprocess
import sys
import time

WIDTH, HEIGHT = 640, 480
SHIPPED = 'shipped'
FASTDDS_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                     'FASTDDS_BUILTIN_TRANSPORTS', 'RMW_FASTRTPS_USE_QOS_FROM_XML')


def publish(args) -> None:
    """Publish ``args.frames`` frames at ``args.rate`` Hz once every topic is matched."""
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from trace_ros.ros.images import depth_to_msg, rgb_to_msg

    rclpy.init()
    node = Node('bench_camera_qos_pub')
    qos = QoSProfile(depth=args.depth, reliability=(
        QoSReliabilityPolicy.RELIABLE if args.qos == 'reliable'
        else QoSReliabilityPolicy.BEST_EFFORT))
    pubs = [node.create_publisher(Image, 'color/image_raw', qos),
            node.create_publisher(Image, 'depth/image_raw', qos),
            node.create_publisher(CameraInfo, 'color/camera_info', qos)]
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and not all(p.get_subscription_count() for p in pubs):
        time.sleep(0.05)
    time.sleep(0.5)  # endpoint discovery completes on both sides
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 2.0, (HEIGHT, WIDTH)).astype(np.float32)
    start = time.monotonic()
    for index in range(args.frames):
        target = start + index / args.rate
        time.sleep(max(0.0, target - time.monotonic()))
        header = Header(frame_id='camera_color_optical_frame',
                        stamp=node.get_clock().now().to_msg())
        pubs[0].publish(rgb_to_msg(rgb, header))
        pubs[1].publish(depth_to_msg(depth, '16UC1', header))
        pubs[2].publish(CameraInfo(header=header, width=WIDTH, height=HEIGHT,
                                   k=[500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]))
    time.sleep(2.0)
    node.destroy_node()
    rclpy.try_shutdown()


def subscribe(args) -> None:
    """Count complete triples from trace_node's CameraSync until the input goes quiet."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import LifecycleNode
    from trace_ros.ros.camera_sync import CameraSync
    from trace_ros.ros.parameters import declare_parameters, read_config
    from trace_ros.ros.params import TraceNodeConfig

    rclpy.init(args=['--ros-args', '--params-file', args.params])
    node = LifecycleNode('trace_node')
    declare_parameters(node, TraceNodeConfig)
    config = read_config(node, TraceNodeConfig)
    reliability = config.camera_reliability if args.qos == SHIPPED else args.qos
    frames = []
    if args.sub_depth:
        from trace_ros.ros import camera_sync
        original = camera_sync.camera_qos

        def deeper(reliability):
            qos = original(reliability)
            qos.depth = args.sub_depth
            return qos
        camera_sync.camera_qos = deeper
    sync = CameraSync(node, lambda *msgs: frames.append(time.monotonic()),
                      slop=config.sync_slop, queue_size=config.sync_queue_size,
                      reliability=reliability, use_message_filters=config.use_message_filters)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    started = time.monotonic()
    while time.monotonic() - (frames[-1] if frames else started) < (4.0 if frames else 40.0):
        executor.spin_once(timeout_sec=0.1)
    print(json.dumps({'triples': len(frames), 'reliability': reliability,
                      'sync': sync.implementation}), flush=True)
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


def run_pair(pub_qos: str, sub_qos: str, args, env, pub_env=None) -> dict:
    """Run one publisher and one subscriber process; return the subscriber's count."""
    me = [sys.executable, os.path.abspath(__file__)]
    common = ['--frames', str(args.frames), '--rate', str(args.rate), '--params', args.params,
              '--depth', str(args.depth), '--sub-depth', str(args.sub_depth)]
    sub = subprocess.Popen(me + ['--role', 'sub', '--qos', sub_qos] + common,
                           stdout=subprocess.PIPE, text=True, env=env)
    pub = subprocess.Popen(me + ['--role', 'pub', '--qos', pub_qos] + common,
                           env=pub_env or env)
    out, _ = sub.communicate(timeout=120)
    pub.wait(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--role', choices=('main', 'pub', 'sub'), default='main')
    parser.add_argument('--qos', default=SHIPPED)
    parser.add_argument('--frames', type=int, default=150)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--depth', type=int, default=1, help='publisher keep-last depth')
    parser.add_argument('--sub-depth', type=int, default=0, help='subscriber depth override')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument('--params', default=os.path.join(root, 'config', 'trace.yaml'))
    parser.add_argument('--no-profile', action='store_true',
                        help='run without the shipped Fast DDS profile (Fast DDS defaults)')
    parser.add_argument('--publisher-defaults', action='store_true',
                        help='run the publisher with Fast DDS defaults (a third-party driver '
                             'that does not load the profile); the subscriber keeps it')
    parser.add_argument('--domain', type=int, default=int(os.environ.get('BENCH_DOMAIN', 77)))
    args = parser.parse_args()
    if args.role == 'pub':
        return publish(args)
    if args.role == 'sub':
        return subscribe(args)
    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain))
    defaults = {k: v for k, v in env.items() if k not in FASTDDS_VARIABLES}
    if args.no_profile:
        env = defaults
    print(f'profile: {env.get("FASTDDS_DEFAULT_PROFILES_FILE", "none")}, builtin transports: '
          f'{env.get("FASTDDS_BUILTIN_TRANSPORTS", "default")}, {args.frames} frames at '
          f'{args.rate:g} Hz, {WIDTH}x{HEIGHT}'
          + (', publisher with Fast DDS defaults' if args.publisher_defaults else ''))
    print(f'{"publisher":<12} {"subscriber":<24} {"triples":>8} {"%":>6}')
    for pub_qos, sub_qos in (('best_effort', SHIPPED), ('reliable', SHIPPED),
                             ('best_effort', 'best_effort'), ('reliable', 'best_effort'),
                             ('reliable', 'reliable')):
        got = run_pair(pub_qos, sub_qos, args, env,
                       defaults if args.publisher_defaults else None)
        label = f'{sub_qos} ({got["reliability"]})' if sub_qos == SHIPPED else sub_qos
        print(f'{pub_qos:<12} {label:<24} {got["triples"]:>8} '
              f'{100.0 * got["triples"] / args.frames:>6.1f}', flush=True)


if __name__ == '__main__':
    main()
