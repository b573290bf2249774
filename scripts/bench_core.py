#!/usr/bin/env python3
"""
Speed of the pure-Python core: each benchmark prints its name, p50 and mean in ms.

Run after ``source scripts/env.sh``: ``python scripts/bench_core.py [--repeats N] [-k TEXT]``.
A benchmark is a setup function registered with ``@benchmark(name, target_ms)``; it builds
its inputs and returns the zero-argument callable that is timed.
"""

import argparse
import statistics
import sys
import time
from typing import Callable, List, NamedTuple, Optional

import numpy as np
from trace_ros.core.answer_format import format_points
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.depth import depth_to_metres, robust_depth
from trace_ros.core.parsing import parse_answer
from trace_ros.core.placement import surface_normal

WIDTH, HEIGHT, POINTS = 640, 480, 1000
PLUMB_BOB = [-0.28, 0.07, 1e-3, -5e-4, -0.01]


class Benchmark(NamedTuple):
    """A named setup function returning the callable to time; optional target in ms."""

    name: str
    setup: Callable[[], Callable[[], object]]
    target_ms: Optional[float]


BENCHMARKS: List[Benchmark] = []


def benchmark(name: str, target_ms: Optional[float] = None):
    """Register the decorated setup function as a benchmark."""
    def register(setup: Callable[[], Callable[[], object]]):
        BENCHMARKS.append(Benchmark(name, setup, target_ms))
        return setup
    return register


def _depth_scene(seed: int = 0):
    """Build a 640x480 depth image (metres, 10 % holes) and 1,000 pixels spread over it."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.4, 3.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.1] = np.nan
    uv = rng.uniform(-0.5, [WIDTH - 0.5, HEIGHT - 0.5], (POINTS, 2))
    return depth, uv


def _deprojection(camera: PinholeCamera) -> Callable[[], object]:
    depth, uv = _depth_scene()

    def run():
        depths, valid = robust_depth(depth, uv, window=5)
        return camera.deproject(uv[valid], depths[valid])
    return run


@benchmark('deproject 1000 pts 640x480 (robust depth 5x5 + deproject), no distortion',
           target_ms=1.0)
def bench_deproject_pinhole():
    return _deprojection(PinholeCamera.from_fovy(WIDTH, HEIGHT, 58.0))


@benchmark('deproject 1000 pts 640x480 (robust depth 5x5 + deproject), plumb_bob',
           target_ms=1.0)
def bench_deproject_plumb_bob():
    camera = PinholeCamera.from_camera_info(WIDTH, HEIGHT, [525.0, 0, 319.5, 0, 525.0, 239.5,
                                                            0, 0, 1], PLUMB_BOB, 'plumb_bob')
    return _deprojection(camera)


@benchmark('robust depth 1000 pts 640x480 (5x5 window)')
def bench_robust_depth():
    depth, uv = _depth_scene()
    return lambda: robust_depth(depth, uv, window=5)


@benchmark('surface normal under 10 answer points (7x7 windows, plumb_bob)')
def bench_surface_normal():
    camera = PinholeCamera.from_camera_info(WIDTH, HEIGHT, [525.0, 0, 319.5, 0, 525.0, 239.5,
                                                            0, 0, 1], PLUMB_BOB, 'plumb_bob')
    depth, uv = _depth_scene()
    return lambda: surface_normal(depth, camera, uv[:10], window=7)


@benchmark('depth_to_metres 640x480 16UC1')
def bench_depth_to_metres():
    raw = np.random.default_rng(0).integers(0, 4000, (HEIGHT, WIDTH)).astype(np.uint16)
    return lambda: depth_to_metres(raw, '16UC1')


def long_answer() -> str:
    """Build a ~1,000-token CoR answer: long reasoning with tuples in it, then 40 answer points."""
    filler = ('The table is mostly free, the mug sits near the plate and the bowl is far '
              'right, so the space between them is the natural choice. ')
    steps = ('1. Goal subtype: object reference.\n'
             f'2. Reference: the red mug, at (0.420, 0.550). {filler * 12}\n'
             f'3. Target area: left of the mug (0.2, 0.5), x 0.20-0.38, y 0.50-0.62. '
             f'{filler * 12}\n4. Coordinates: points sampled inside the target area.\n')
    rng = np.random.default_rng(0)
    return steps + 'Answer: ' + format_points(rng.uniform(0.2, 0.6, (40, 2)))


@benchmark('parse a ~1000-token CoR answer (40 points, tuples in the reasoning)', 1.0)
def bench_parse_answer():
    text = long_answer()
    return lambda: parse_answer(text, image_size=(WIDTH, HEIGHT))


def time_ms(run: Callable[[], object], repeats: int, warmup: int = 10) -> List[float]:
    """Wall-clock milliseconds of ``repeats`` calls of ``run`` after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv=None) -> int:
    """Run the selected benchmarks; exit status 1 when a p50 misses its target."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--repeats', type=int, default=300, help='timed calls per benchmark')
    parser.add_argument('-k', dest='select', default='',
                        help='only benchmarks whose name contains this text')
    args = parser.parse_args(argv)
    missed = []
    for bench in BENCHMARKS:
        if args.select not in bench.name:
            continue
        times = time_ms(bench.setup(), args.repeats)
        p50, mean = statistics.median(times), statistics.fmean(times)
        target = ''
        if bench.target_ms is not None:
            ok = p50 < bench.target_ms
            target = f'  target < {bench.target_ms:g} ms: {"ok" if ok else "MISSED"}'
            if not ok:
                missed.append(bench.name)
        print(f'{bench.name:<80} p50 {p50:8.3f} ms  mean {mean:8.3f} ms{target}', flush=True)
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
