#!/usr/bin/env python3
"""
Camera callback rate of trace_node while its model is generating (target: the input rate).

Starts a publisher process sending synthetic 640x480 RGB-D frames + CameraInfo at --rate Hz,
runs trace_node in this process with a real tiny LLaVA (random weights, end token held back
so one generation lasts --generate seconds), and counts the synchronized frames the node
receives while idle and while the model runs. Run after ``source scripts/env.sh``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from trace_ros.backends.base import BackendError
from trace_ros.core.camera import PinholeCamera
from trace_ros.ros.images import depth_to_msg, rgb_to_msg

WIDTH, HEIGHT = 640, 480


def publish_frames(rate_hz: float, count_file: str) -> None:
    """Publish synthetic frames (table 1 m below) at ``rate_hz``, counted to a file."""
    rclpy.init()
    node = Node('bench_camera')
    qos = 1
    pubs = [node.create_publisher(Image, 'color/image_raw', qos),
            node.create_publisher(Image, 'depth/image_raw', qos),
            node.create_publisher(CameraInfo, 'color/camera_info', qos)]
    camera = PinholeCamera.from_fovy(WIDTH, HEIGHT, 60.0)
    rgb = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = np.full((HEIGHT, WIDTH), 1.0, np.float32)
    sent = [0]

    parent = os.getppid()

    def tick():
        if os.getppid() != parent:  # the benchmark died: do not publish forever
            raise SystemExit(0)
        header = Header(frame_id='camera_color_optical_frame',
                        stamp=node.get_clock().now().to_msg())
        pubs[0].publish(rgb_to_msg(rgb, header))
        pubs[1].publish(depth_to_msg(depth, '32FC1', header))
        pubs[2].publish(CameraInfo(header=header, width=WIDTH, height=HEIGHT,
                                   k=camera.k.flatten().tolist()))
        sent[0] += 1
        with open(count_file, 'w') as f:
            f.write(str(sent[0]))
    node.create_timer(1.0 / rate_hz, tick)
    rclpy.spin(node)


def rates_during(node, count_file: str, seconds: float):
    """Return (frames/s sent, synchronized frames/s the node received) over ``seconds``."""
    def sent():
        with open(count_file) as f:
            return int(f.read() or 0)
    start_sent, start_seq, start = sent(), node._frames.seq, time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    return (sent() - start_sent) / elapsed, (node._frames.seq - start_seq) / elapsed


def record_generations(backend) -> list:
    """Keep what each generate() call of ``backend`` produced (also when it timed out)."""
    made, generate = [], backend.generate

    def recorded(*args, **kwargs):
        try:
            made.append(generate(*args, **kwargs))
            return made[-1]
        except BackendError as exc:
            if getattr(exc, 'partial', None) is not None:
                made.append(exc.partial)
            raise
    backend.generate = recorded
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--rate', type=float, default=30.0, help='camera rate, Hz')
    parser.add_argument('--generate', type=float, default=6.0, help='generation length, s')
    parser.add_argument('--reliability', default='best_effort',
                        choices=('best_effort', 'reliable'), help='node camera QoS')
    parser.add_argument('--torch-threads', type=int, default=0, help='node torch_threads')
    parser.add_argument('--switch-interval-ms', type=float, default=0.0,
                        help="Python's thread switch interval in the node's process (0: the "
                        "node's own, 1 ms; Python's default is 5 ms)")
    parser.add_argument('--publisher', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        return publish_frames(args.rate, args.publisher)
    from trace_ros.ros.trace_node import TraceNode
    from trace_train.model.tiny_vlm import build_tiny_vlm
    model_dir = build_tiny_vlm(tempfile.mkdtemp() + '/tiny', ['put the cup left of the bowl'])
    env = dict(os.environ, FASTDDS_BUILTIN_TRANSPORTS=os.environ.get(
        'FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA'))
    count_file = tempfile.mktemp(suffix='.count')
    publisher = subprocess.Popen([sys.executable, __file__, '--publisher', count_file,
                                  '--rate', str(args.rate)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = json.dumps({'min_new_tokens': 8192})
    params = {'model': model_dir, 'max_new_tokens': 8192, 'generation_timeout': args.generate,
              'generation_options': f"'{options}'", 'target_frame': 'world',
              'static_transform': '[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]',
              'static_transform_parent': 'world',
              'static_transform_child': 'camera_color_optical_frame',
              'camera_reliability': args.reliability, 'torch_threads': args.torch_threads}
    rclpy.init(args=['--ros-args'] + [a for k, v in params.items() for a in ('-p', f'{k}:={v}')])
    node = TraceNode()
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        node.trigger_configure()
        generations = record_generations(node._backend)
        node.trigger_activate()
        time.sleep(3.0)  # discovery and warm-up
        idle_sent, idle = rates_during(node, count_file, 3.0)
        sender = node.create_publisher(String, 'instruction', 10)
        sender.publish(String(data='put the cup left of the bowl'))
        time.sleep(0.5)  # the request takes a frame and starts generating
        busy_sent, busy = rates_during(node, count_file, args.generate - 1.5)
        print(f'camera timer {args.rate:.1f} Hz ({WIDTH}x{HEIGHT} rgb8 + 32FC1 + CameraInfo)')
        print(f'idle:             sent {idle_sent:5.1f} Hz, node received {idle:5.1f} Hz')
        print(f'model generating: sent {busy_sent:5.1f} Hz, node received {busy:5.1f} Hz '
              f'({100 * busy / max(busy_sent, 1e-9):.0f}% of the input)')
    finally:
        node.trigger_deactivate()  # joins the worker (its generation times out first)
        publisher.terminate()
        publisher.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    for generation in generations:
        print(f'generation while the camera ran: {generation.num_tokens} tokens in '
              f'{generation.inference_s:.2f} s ({generation.tokens_per_s:.1f} tokens/s, '
              f'switch interval {1000 * sys.getswitchinterval():.1f} ms)')


if __name__ == '__main__':
    main()
