#!/usr/bin/env python3
"""
Cost of placement refinement at 640x480: p50 / p95 ms on top of today's locate_placement.

A synthetic tabletop (table, boxes, floor; ray cast as in test/tabletop_depth.py) seen
obliquely at ~1.2 m, in millimetre depth (16UC1 quantization, 1 mm noise, 5 % holes). Each
run grounds the points of one reply (``ground_placement``: the scene support, every point's
support check, the clusters and the goal check) with confidences from token log-probs.
Wall time suffers on a shared machine; the thread's CPU time does not count the time other
processes hold the cores.

    python scripts/bench_refine.py [--repeats 300] [--points 3 8 16]
"""

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'test'))
from tabletop_depth import CAMERA, render, reply, WORLD_FROM_OPTICAL  # noqa: E402
from trace_ros.core.pipeline import locate_placement, prepare_frame  # noqa: E402
from trace_ros.core.refinement import ground_placement  # noqa: E402
from trace_ros.core.support import SupportParams  # noqa: E402

BOXES = [(-0.1, 0.1, -0.1, 0.1, 0.1), (0.15, 0.22, 0.2, 0.3, 0.15),
         (-0.3, -0.2, -0.35, -0.25, 0.05)]


def scene(seed: int = 0):
    """Return the frame (millimetre depth) and a sampler of world points on the table."""
    rng = np.random.default_rng(seed)
    depth = render(BOXES)
    depth = np.round((depth + rng.normal(0.0, 0.001, depth.shape)) * 1000.0) / 1000.0
    depth[rng.random(depth.shape) < 0.05] = np.nan
    frame = prepare_frame(np.zeros((480, 640, 3), np.uint8), depth.astype(np.float32), CAMERA,
                          'camera_color_optical_frame', min_depth=0.1, max_depth=10.0)
    return frame, rng


def percentiles(samples) -> str:
    """Return 'p50 X ms, p95 Y ms' of samples in seconds."""
    p50, p95 = np.percentile(np.asarray(samples) * 1e3, [50, 95])
    return f'p50 {p50:6.2f} ms, p95 {p95:6.2f} ms'


def main(argv=None) -> None:
    """Time locate_placement alone and ground_placement on top of it, per answer size."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--repeats', type=int, default=300)
    parser.add_argument('--points', type=int, nargs='+', default=[3, 8, 16])
    args = parser.parse_args(argv)
    frame, rng = scene()
    params = SupportParams()
    print(f'{CAMERA.width}x{CAMERA.height}, {args.repeats} runs each')
    for count in args.points:
        world = np.column_stack([rng.uniform(-0.35, 0.35, (args.repeats, count, 2)).reshape(
            -1, 2), np.zeros(args.repeats * count)]).reshape(args.repeats, count, 3)
        world[:, :, 2] = [[0.1 if abs(x) < 0.1 and abs(y) < 0.1 else 0.0 for x, y in run]
                          for run in world[:, :, :2]]
        texts = [reply(points) for points in world]
        base, refine, cpu = [], [], []
        for text in texts:
            logprobs = [(c, -0.1) for c in text]
            start = time.perf_counter()
            placement = locate_placement(frame, text, WORLD_FROM_OPTICAL)
            middle, middle_cpu = time.perf_counter(), time.thread_time()
            ground_placement(frame, placement, WORLD_FROM_OPTICAL, params, text, logprobs)
            cpu.append(time.thread_time() - middle_cpu)
            refine.append(time.perf_counter() - middle)
            base.append(middle - start)
        print(f'{count:2d} points: locate_placement {percentiles(base)} | refinement on top: '
              f'wall {percentiles(refine)}, CPU {percentiles(cpu)}')


if __name__ == '__main__':
    main()
