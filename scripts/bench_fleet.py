#!/usr/bin/env python3
r"""
Fleet benchmark: N robots against one OpenAI-compatible server, or N in-process models.

Modes ``own`` (trace_ros.backends.openai_server), ``vllm`` (TRACE_VLLM_PYTHON) and
``inprocess`` (a TransformersBackend per robot) serve one model (default: a tiny LLaVA that vLLM's
CPU build serves). Each robot, a process, has its own camera stream (a ray-cast 640x480
tabletop with its own boxes) and answers instructions back to back as trace_node does, to a 3D
goal. Replies are exactly ``--tokens`` tokens unless ``--structured``. Per (mode, N): answers/s,
p50/p95 instruction-to-goal latency, peak RSS/PSS of the server or the N models; merged into
OUT/results.json, OUT/results.md and OUT/fleet.png. Details: docs/MODELS.md, "Fleet benchmark".

    python scripts/bench_fleet.py --modes own vllm inprocess --robots 1 2 4 8 16 \
        --requests 8 --tokens 128
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import pathlib
import sys
import threading
import time

import numpy as np
import psutil

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'test'))
from server_harness import (free_port, own_server_command, running_server,  # noqa: E402
                            vllm_command)
from tabletop_depth import CAMERA, render, reply, WORLD_FROM_OPTICAL  # noqa: E402
from tiny_model import TEXTS  # noqa: E402
from tqdm import tqdm  # noqa: E402
from trace_ros.backends import make_backend  # noqa: E402
from trace_ros.core.answer_format import reply_regex  # noqa: E402
from trace_ros.core.parsing import parse_answer  # noqa: E402
from trace_ros.core.pipeline import locate_placement, prepare_frame  # noqa: E402
from trace_ros.core.prompts import build_prompt  # noqa: E402
from trace_ros.core.status import PlacementError  # noqa: E402

MODES = {'own': 'own server', 'vllm': 'vLLM server', 'inprocess': 'in-process'}
INSTRUCTIONS = ['Place the red cup to the left of the plate.',
                'Put the bowl in the free space between the mug and the box.',
                'Put the apple on the table, right of the blue box.',
                'Place the mug in front of the tallest box.']
MIB = 2.0 ** 20


class CameraStream:
    """One robot's RGB-D camera: its own seeded boxes and colours, fresh noise per frame."""

    def __init__(self, robot: int, frames: int = 4):
        rng = np.random.default_rng(1000 + robot)
        boxes = [(x, x + w, y, y + d, h) for x, y, w, d, h in zip(
            *rng.uniform([-0.35, -0.45, 0.05, 0.05, 0.04], [0.25, 0.3, 0.15, 0.15, 0.2],
                         (int(rng.integers(2, 5)), 5)).T)]
        depth = render(boxes)
        v, u = np.mgrid[0:CAMERA.height, 0:CAMERA.width]
        world = WORLD_FROM_OPTICAL.apply(CAMERA.deproject(
            np.stack([u.ravel(), v.ravel()], 1).astype(float), depth.ravel().astype(float)))
        x, y, z = world.T
        rgb = np.where((z > -0.06)[:, None], [150.0, 110.0, 70.0], [80.0, 80.0, 85.0])
        rgb += (8.0 * np.sin(60.0 * x))[:, None]  # wood grain
        for (x0, x1, y0, y1, height), colour in zip(boxes, rng.uniform(40, 230, (len(boxes), 3))):
            inside = (x > x0 - 1e-3) & (x < x1 + 1e-3) & (y > y0 - 1e-3) & (y < y1 + 1e-3)
            inside &= z > 2e-3
            rgb[inside] = colour * (0.7 + 0.3 * z[inside, None] / height)
        rgb = np.nan_to_num(rgb).reshape(*depth.shape, 3)  # NaN: no surface on that ray
        self.robot, self.frames = robot, []
        for _ in range(frames):  # ready before the instructions, as a camera's frames are
            noisy = np.round((depth + rng.normal(0.0, 1e-3, depth.shape)) * 1e3) / 1e3
            noisy[rng.random(depth.shape) < 0.02] = np.nan  # mm steps, 2 % holes
            self.frames.append((np.clip(rgb + rng.normal(0.0, 2.0, rgb.shape), 0, 255).astype(
                np.uint8), noisy.astype(np.float32)))
        table = np.column_stack([rng.uniform(-0.4, 0.4, (3, 2)), np.zeros(3)])
        self.stand_in = reply(table)  # what a parsable reply would say

    def frame(self, k: int):
        """Return frame ``k`` (cycling): uint8 RGB and metre depth."""
        return self.frames[k % len(self.frames)]


def ask(backend, stream: CameraStream, k: int, min_tokens, timeout_s: float) -> dict:
    """Answer the robot's k-th instruction to a 3D goal as trace_node does; time it."""
    start = time.monotonic()
    rgb, depth = stream.frame(k)
    frame = prepare_frame(rgb, depth, CAMERA, 'camera_color_optical_frame', min_depth=0.1,
                          max_depth=10.0)
    prompt = build_prompt(INSTRUCTIONS[(stream.robot + k) % len(INSTRUCTIONS)], 'cor')
    generation = backend.generate(rgb, prompt, timeout_s=timeout_s, min_new_tokens=min_tokens)
    parsed = parse_answer(generation.text, image_size=(CAMERA.width, CAMERA.height))
    try:
        locate_placement(frame, generation.text if parsed.ok else stream.stand_in,
                         WORLD_FROM_OPTICAL, parsed=parsed if parsed.ok else None)
        goal = True
    except PlacementError:
        goal = False
    return {'latency_s': time.monotonic() - start, 'tokens': generation.num_tokens,
            'parsed': bool(parsed.ok), 'goal': goal}


def memory_mib(pids) -> tuple[float, float]:
    """Return the RSS and PSS (MiB) summed over processes and their children."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for process in [root] + root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    info = process.memory_full_info()
                    rss, pss = rss + info.rss, pss + info.pss
    return rss / MIB, pss / MIB


@contextlib.contextmanager
def peak_memory(pids, interval_s: float = 0.2):
    """Yield a dict holding the peak ``memory_mib`` of ``pids`` while the block runs."""
    peak, stop = {'rss_mib': 0.0, 'pss_mib': 0.0}, threading.Event()

    def watch():
        while True:
            for key, value in zip(list(peak), memory_mib(pids)):
                peak[key] = max(peak[key], value)
            if stop.wait(interval_s):
                return

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def serving(mode: str, args, log_path: pathlib.Path):
    """Start the server of ``mode`` on the model; yield (process, API root) once it lists it."""
    port = free_port()
    if mode == 'own':
        command, env = own_server_command(args.model, port, args.tokens, args.device)
    elif not args.vllm_python:
        sys.exit('--modes vllm needs --vllm-python or TRACE_VLLM_PYTHON')
    else:
        command, env = vllm_command(args.vllm_python, args.model, port,
                                    log_path.parent / 'vllm_scratch')
    with running_server(command, env, port, log_path, args.server_timeout) as running:
        yield running


def summary(mode, n, args, records, wall_s, memory: dict) -> dict:
    """Return one result row: throughput, latency percentiles, tokens and memory."""
    latency = np.array([r['latency_s'] for r in records]) * 1e3
    tokens = sum(r['tokens'] for r in records)
    p50, p95 = np.percentile(latency, [50, 95]).round(1).tolist()
    return {'mode': mode, 'robots': n, 'requests': len(records), 'tokens': args.tokens,
            'structured': args.structured, 'wall_s': round(wall_s, 2),
            'answers_per_s': round(len(records) / wall_s, 3), 'p50_ms': p50, 'p95_ms': p95,
            'tokens_per_s': round(tokens / wall_s, 1), 'mean_tokens': tokens / len(records),
            'parsed': float(np.mean([r['parsed'] for r in records])),
            'goals': float(np.mean([r['goal'] for r in records])),
            **{key: round(value) for key, value in memory.items()}}


def robot_process(robot, args, backend_params, barrier, queue):
    """One robot: its backend and camera; warm up, wait for the others, answer, report."""
    try:
        backend, stream = make_backend(**backend_params), CameraStream(robot, args.frames)
        ask(backend, stream, 0, args.min_tokens, args.timeout)  # warm-up
        barrier.wait()
        records, started = [], time.monotonic()
        for k in range(args.requests):
            records.append(ask(backend, stream, k, args.min_tokens, args.timeout))
            queue.put(('answer', robot, None))
        queue.put(('done', robot, (records, started, time.monotonic())))
    except Exception as exc:  # reported by the parent
        barrier.abort()
        queue.put(('error', robot, repr(exc)))


def run_fleet(mode, n, args, backend_params, server_pid=None) -> dict:
    """Run N robot processes at once; measure the server's memory, or theirs without one."""
    context = multiprocessing.get_context('spawn')
    barrier, queue = context.Barrier(n + 1), context.Queue()
    processes = [context.Process(target=robot_process, daemon=True,
                                 args=(i, args, backend_params, barrier, queue))
                 for i in range(n)]
    for process in processes:
        process.start()
    try:
        barrier.wait(timeout=args.server_timeout)
    except threading.BrokenBarrierError:
        sys.exit(f'{MODES[mode]} robots did not start: {queue.get(timeout=5)}')
    records, spans = [], []  # the wall time is the robots' own: this process may lag
    with peak_memory([server_pid] if server_pid else [p.pid for p in processes]) as memory:
        with tqdm(total=n * args.requests, desc=f'{mode} N={n}', unit='answer') as bar:
            while len(spans) < n:
                kind, robot, payload = queue.get(timeout=args.timeout)
                if kind == 'error':
                    sys.exit(f'{MODES[mode]} robot {robot} failed: {payload}')
                if kind == 'answer':
                    bar.update()
                else:
                    records += payload[0]
                    spans.append(payload[1:])
    for process in processes:
        process.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return summary(mode, n, args, records, wall, memory)


def run_mode(mode, args, out: pathlib.Path) -> list:
    """Run each fleet size in ``mode`` (a server for all of them, or a model per robot)."""
    if mode == 'inprocess':
        return [run_fleet(mode, n, args, {
            'kind': 'transformers', 'model': args.model, 'device': args.device,
            'max_new_tokens': args.tokens, 'reply_regex': args.regex,
            'num_threads': args.threads or max(1, (os.cpu_count() or 1) // n)})
            for n in args.robots]
    with serving(mode, args, out / f'{mode}_server.log') as (server, url):
        idle = memory_mib([server.pid])[0]
        client = {'kind': 'openai', 'base_url': url, 'timeout_s': args.timeout,
                  'max_retries': 0, 'model': make_backend('openai', base_url=url).list_models()[0],
                  'max_new_tokens': args.tokens, 'reply_regex': args.regex}
        return [dict(run_fleet(mode, n, args, client, server.pid), idle_rss_mib=round(idle))
                for n in args.robots]


def write_outputs(out: pathlib.Path, rows: list) -> None:
    """Merge rows into results.json; write results.md and fleet.png from all rows."""
    path = out / 'results.json'
    old = json.loads(path.read_text())['rows'] if path.exists() else []
    new = {(r['mode'], r['robots']) for r in rows}
    rows = sorted([r for r in old if (r['mode'], r['robots']) not in new] + rows,
                  key=lambda r: (list(MODES).index(r['mode']), r['robots']))
    info = {'cpus': os.cpu_count(), 'machine': os.uname().machine}
    path.write_text(json.dumps({'host': info, 'rows': rows}, indent=1) + '\n')
    lines = ['| N | mode | answers/s | p50 ms | p95 ms | memory MiB (RSS) | PSS MiB |',
             '|---:|---|---:|---:|---:|---:|---:|']
    lines += [f"| {r['robots']} | {MODES[r['mode']]} | {r['answers_per_s']:.2f} | "
              f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['rss_mib']} | {r['pss_mib']} |"
              for r in rows]
    (out / 'results.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    sizes = sorted({r['robots'] for r in rows})
    for axis, key, label in zip(axes, ('answers_per_s', 'p95_ms', 'rss_mib'), (
            'answers/s', 'p95 instruction-to-goal latency (ms)', 'peak memory, RSS (MiB)')):
        for mode in MODES:
            mine = [r for r in rows if r['mode'] == mode]
            if mine:
                axis.plot([r['robots'] for r in mine], [r[key] for r in mine], marker='o',
                          label=MODES[mode])
        axis.set(xscale='log', xlabel='robots N', ylabel=label)
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(out / 'fleet.png', dpi=120)


def main(argv=None) -> None:
    """Parse the arguments, build the model if needed, run the modes, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--modes', nargs='+', choices=list(MODES), default=['own', 'inprocess'])
    parser.add_argument('--robots', type=int, nargs='+', default=[1, 2, 4, 8, 16])
    parser.add_argument('--requests', type=int, default=8, help='instructions per robot')
    parser.add_argument('--tokens', type=int, default=128, help='new tokens per answer')
    parser.add_argument('--structured', action='store_true',
                        help='constrain replies to the CoR grammar (lengths then vary)')
    parser.add_argument('--model', help='model directory; default: OUT/model/tiny-llava-hf')
    parser.add_argument('--device', default='cpu', help='own server and in-process models')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch threads per in-process model; 0: CPUs / N')
    parser.add_argument('--frames', type=int, default=4, help='frames per camera stream')
    parser.add_argument('--timeout', type=float, default=600.0, help='seconds per answer')
    parser.add_argument('--server-timeout', type=float, default=600.0,
                        help='seconds for a server or the in-process models to load')
    parser.add_argument('--vllm-python', default=os.environ.get('TRACE_VLLM_PYTHON', ''))
    parser.add_argument('--out', default='out/bench_fleet')
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        args.model = str(out / 'model' / 'tiny-llava-hf')
        if not (out / 'model' / 'tiny-llava-hf' / 'config.json').exists():
            from trace_train.model.tiny_vlm import build_servable_tiny_llava
            build_servable_tiny_llava(args.model, TEXTS)
    args.regex = reply_regex('cor') if args.structured else ''
    args.min_tokens = None if args.structured else args.tokens
    rows = []
    for mode in args.modes:
        started = time.monotonic()
        rows += run_mode(mode, args, out)
        print(f'{MODES[mode]}: {time.monotonic() - started:.0f} s', flush=True)
    write_outputs(out, rows)


if __name__ == '__main__':
    main()
