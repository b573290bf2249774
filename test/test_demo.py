"""The README's main job runs: a scene through render, trace-tiny, pipeline and placement."""

import subprocess
import sys


def test_demo_places_an_object_with_the_embedded_model(tmp_path):
    # Scene 6 is the one of the demo's first eight that trace-tiny places correctly (1/8).
    run = subprocess.run([sys.executable, '-m', 'trace_ros.demo', '--seed', '6', '--scenes', '1',
                          '--out', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'answer from model' in run.stdout and 'trace-tiny' in run.stdout
    assert 'goal in world' in run.stdout
    assert '1/1 placements succeeded' in run.stdout
    assert (tmp_path / 'scene6.png').exists()
