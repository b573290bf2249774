#!/usr/bin/env python3
"""
Fuzz trace_node over DDS: cases, crashes, unanswered good requests, RSS growth of the node.

Starts trace_node in its own process with the memorized tiny LLaVA of the test suite (it
answers the good request exactly) and the shipped camera QoS, a best-effort synthetic
camera in this process, then runs --cases seeded hostile cases from test/fuzz_cases.py,
each followed by a good request that must be answered OK. Run after
``source scripts/env.sh``.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))

from fuzz_cases import Fuzzer  # noqa: E402
from memorized_model import build_memorized_model, REPLIES  # noqa: E402
from ros_harness import OPTICAL_FRAME, Session, WORLD_FROM_OPTICAL  # noqa: E402
from trace_ros.core.prompts import build_prompt  # noqa: E402
from trace_ros.core.status import Status  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def ask_good(session):
    """Ask the good instruction; ask again if the synthetic camera stalled (stale frame)."""
    for _ in range(3):
        try:
            result = session.ask(next(iter(REPLIES)), timeout=30.0)
        except AssertionError:
            return None
        if result.status != Status.STALE_FRAME:
            return result
        time.sleep(0.5)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', type=int, default=300)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--domain', type=int, default=int(os.environ.get('BENCH_DOMAIN', 82)))
    args = parser.parse_args()
    os.environ['ROS_DOMAIN_ID'] = str(args.domain)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    work = tempfile.mkdtemp(prefix='bench_fuzz_')
    model = build_memorized_model(os.path.join(work, 'memorized'),
                                  {build_prompt(k, style='cor'): v for k, v in REPLIES.items()})
    params = {'model': str(model), 'max_new_tokens': 4000, 'generation_timeout': 5.0,
              'target_frame': 'world', 'static_transform': WORLD_FROM_OPTICAL,
              'static_transform_parent': 'world', 'static_transform_child': OPTICAL_FRAME,
              'max_frame_age': 1.0}
    session = Session(args.domain, params, work, best_effort_camera=True)
    pid = session.process.pid
    log = []
    fuzzer = Fuzzer(session, args.seed, ask_good, log)
    for _ in range(10):  # warm up: allocator pools, first-call caches
        fuzzer.ask_good(session)
    start_rss = rss_mb(pid)
    peak = start_rss
    crashes = 0
    started = time.monotonic()
    for index in range(args.cases):
        try:
            fuzzer.run_one()
        except AssertionError as exc:  # a hostile case got no answer at all
            fuzzer.unexpected.append(f'case {index + 1}: {exc}')
        if session.process.poll() is not None:
            crashes += 1
            break
        peak = max(peak, rss_mb(pid))
        if (index + 1) % 50 == 0:
            print(f'  {index + 1} cases, {time.monotonic() - started:.0f} s, '
                  f'RSS {rss_mb(pid):.0f} MiB', flush=True)
    end_rss = rss_mb(pid) if session.process.poll() is None else float('nan')
    session.close()
    print(f'cases: {fuzzer.cases}')
    print(f'crashes: {crashes}')
    print(f'unanswered good requests: {fuzzer.unanswered_good}')
    print(f'hostile cases without a known status or with an unexpected error: '
          f'{len(fuzzer.unexpected)}')
    print(f'node RSS: {start_rss:.0f} MiB after warm-up, {end_rss:.0f} MiB at the end '
          f'(growth {end_rss - start_rss:+.0f} MiB, peak {peak:.0f} MiB)')
    for line in (log + fuzzer.unexpected)[:20]:
        print('  ' + line)


if __name__ == '__main__':
    main()
