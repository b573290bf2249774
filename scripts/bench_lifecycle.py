#!/usr/bin/env python3
"""
Lifecycle cycling of trace_node: crashes, unanswered transitions, time to the first frame.

Starts trace_node in its own process (a tiny random LLaVA, 4 new tokens per answer) with
the shipped camera QoS, a best-effort synthetic camera at --rate Hz and an instruction
every 100 ms in this process, then runs --cycles of deactivate -> cleanup -> configure ->
activate through the node's change_state service. The instructions pause from the activate
request until one action goal, sent when activate returns, is answered (so that no request
is queued ahead of it: a queued request is answered on the newest frame when its turn
comes). The bench measures the stamp of the frame the goal was answered on (the camera
stamps frames when it publishes them) after activate returned, and after the goal reached
the node (the result's arrival minus its total_time), and counts the frames the camera
published in between that the node did not use. Run after
``source scripts/env.sh``.
"""

import argparse
import collections
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from ros_harness import OPTICAL_FRAME, Session, TRANSITIONS, WORLD_FROM_OPTICAL  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from tiny_model import tiny_model_dir  # noqa: E402
from trace_ros.action import FindPlacement  # noqa: E402

ORDER = ('deactivate', 'cleanup', 'configure', 'activate')


def spread(seconds: list) -> str:
    """Return 'median M, p95 P, max X' of durations in seconds, in ms."""
    ms = sorted(1000.0 * x for x in seconds)
    return (f'median {statistics.median(ms):.1f}, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f}, '
            f'max {ms[-1]:.1f}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cycles', type=int, default=1000)
    parser.add_argument('--rate', type=float, default=30.0, help='camera rate (Hz)')
    parser.add_argument('--domain', type=int, default=int(os.environ.get('BENCH_DOMAIN', 81)))
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds before a change_state counts as unanswered')
    args = parser.parse_args()
    os.environ['ROS_DOMAIN_ID'] = str(args.domain)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    params = {'model': str(tiny_model_dir()), 'max_new_tokens': 4, 'target_frame': 'world',
              'static_transform': WORLD_FROM_OPTICAL, 'static_transform_parent': 'world',
              'static_transform_child': OPTICAL_FRAME, 'frame_wait_timeout': 3.0}
    log_dir = tempfile.mkdtemp(prefix='bench_lifecycle_')
    session = Session(args.domain, params, log_dir, best_effort_camera=True,
                      camera_rate_hz=args.rate)
    client = session.client
    change = client.node.create_client(ChangeState, 'trace_node/change_state')
    assert change.wait_for_service(timeout_sec=10.0)
    stop, quiet = threading.Event(), threading.Event()

    def feed():
        while not stop.is_set():
            if not quiet.is_set():
                session.instructions.publish(String(data='put the mug left of the bowl'))
            time.sleep(0.1)
    threading.Thread(target=feed, daemon=True).start()
    unanswered, failed, first_frame, after_request, probes_without_frame = 0, 0, [], [], 0
    skipped, gaps = [], []  # frames published after the request before the one used

    def now() -> float:
        return client.node.get_clock().now().nanoseconds * 1e-9
    started = time.monotonic()
    cycles = 0
    try:
        for cycles in range(1, args.cycles + 1):
            quiet.clear()
            for name in ORDER:
                if name == 'activate':
                    quiet.set()  # no instruction queued ahead of the probe
                future = change.call_async(ChangeState.Request(
                    transition=Transition(id=TRANSITIONS[name])))
                if not client.wait_until(future.done, args.timeout):
                    unanswered += 1
                elif not future.result().success:
                    failed += 1
                if session.process.poll() is not None:
                    raise RuntimeError(f'cycle {cycles}: trace_node exited with '
                                       f'{session.process.returncode} at {name}')
            activated = now()
            goal = session.action.send_goal_async(FindPlacement.Goal(
                instruction='put the mug left of the bowl'))
            if not client.wait_until(goal.done, args.timeout) or not goal.result().accepted:
                probes_without_frame += 1
                continue
            result = goal.result().get_result_async()
            done_at = []
            result.add_done_callback(lambda _: done_at.append(now()))
            if not client.wait_until(result.done, args.timeout):
                probes_without_frame += 1
                continue
            answer = result.result().result.result
            if answer.status in (1, 2):  # NO_FRAME, STALE_FRAME
                probes_without_frame += 1
                continue
            stamp = answer.header.stamp.sec + answer.header.stamp.nanosec * 1e-9
            first_frame.append(stamp - activated)
            client.wait_until(lambda: done_at, 1.0)
            total = answer.total_time.sec + answer.total_time.nanosec * 1e-9
            arrival = done_at[0] - total
            after_request.append(stamp - arrival)
            stamps = list(session.camera.stamps)
            skipped.append(sum(arrival < s < stamp - 1e-6 for s in stamps))
            later = [s for s in stamps if s > arrival]
            gaps.append(later[0] - arrival if later else float('nan'))
            if cycles % 50 == 0:
                print(f'  {cycles} cycles, {time.monotonic() - started:.0f} s', flush=True)
    except RuntimeError as exc:
        print(exc)
    finally:
        stop.set()
    crashes = int(session.process.poll() is not None)
    session.close()
    period_ms = 1000.0 / args.rate
    print(f'cycles: {cycles}')
    print(f'crashes: {crashes}')
    print(f'unanswered change_states: {unanswered} (failed transitions: {failed})')
    print(f'probes after activate without a frame: {probes_without_frame}')
    for label, values in (('after activate returned', first_frame),
                          ('after the probe reached the node', after_request)):
        if values:
            print(f'stamp of the frame used, {label} (ms; camera period {period_ms:.1f}): '
                  f'{spread(values)}, within two periods '
                  f'{sum(1000.0 * x <= 2 * period_ms for x in values)}/{len(values)}')
    if skipped:
        counts = collections.Counter(skipped)
        print('frames the camera published after the probe reached the node and before the '
              'one used: ' + ', '.join(f'{k}: {counts[k]}' for k in sorted(counts)))
        print("the camera's own delay to its next frame after the probe (ms): "
              + spread([x for x in gaps if x == x]))
        stamps = list(session.camera.stamps)
        print('camera publish interval (ms): '
              + spread([b - a for a, b in zip(stamps, stamps[1:])]))


if __name__ == '__main__':
    main()
