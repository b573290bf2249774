"""The README's main job runs: one scene through render, answer, pipeline and placement."""

import subprocess
import sys


def test_demo_places_an_object(tmp_path):
    run = subprocess.run([sys.executable, '-m', 'trace_ros.demo', '--scenes', '1',
                          '--out', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'goal in world' in run.stdout
    assert '1/1 placements succeeded' in run.stdout
    assert (tmp_path / 'scene0.png').exists()
