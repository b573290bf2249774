"""
The shipped camera QoS and middleware profile deliver a best-effort camera across processes.

A publisher process sends 640x480 rgb8 + 16UC1 + CameraInfo frames best-effort; a second
process runs trace_node's CameraSync with config/trace.yaml as shipped (no reliability
override) and counts the frame triples it matches (scripts/bench_camera_qos.py's roles).
With Fast DDS's default 512 KiB shared-memory segment most frames were lost.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = str(ROOT / 'scripts' / 'bench_camera_qos.py')
FRAMES = 60


def run_pair(publisher: str) -> dict:
    """Run a subscriber with the shipped config and a publisher; return what it counted."""
    common = ['--frames', str(FRAMES), '--rate', '10', '--params',
              str(ROOT / 'config' / 'trace.yaml')]
    env = dict(os.environ)
    sub = subprocess.Popen([sys.executable, BENCH, '--role', 'sub', '--qos', 'shipped'] + common,
                           stdout=subprocess.PIPE, text=True, env=env)
    pub = subprocess.Popen([sys.executable, BENCH, '--role', 'pub', '--qos', publisher] + common,
                           env=env)
    try:
        out, _ = sub.communicate(timeout=120)
        pub.wait(timeout=60)
    finally:
        for process in (sub, pub):
            if process.poll() is None:
                process.kill()
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize('publisher', ['best_effort', 'reliable'])
def test_shipped_config_receives_a_camera_in_another_process(ros_domain_id, publisher):
    # Best of up to three runs: the fault this guards against (a shared-memory segment too
    # small for one image) loses 30-60 % of the frames in every run, while a busy CI
    # machine can stall the subscriber once (29 of 60 arrived in one run in a full suite).
    runs = []
    for _ in range(3):
        runs.append(run_pair(publisher))
        assert runs[-1]['reliability'] == 'best_effort'  # the shipped default
        if runs[-1]['triples'] >= 0.9 * FRAMES:
            break
    assert max(run['triples'] for run in runs) >= 0.9 * FRAMES, runs
