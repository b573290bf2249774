"""The README's main job: the closed loop over real nodes on the embedded model."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_runs_the_closed_loop_through_the_nodes(tmp_path, ros_domain_id):
    # Scene 5: trace-tiny publishes a goal there (the executor then judges it); whether the
    # placement succeeds is the model's score (its card), not this test's.
    run = subprocess.run([sys.executable, '-m', 'trace_ros.demo', '--seed', '5', '--scenes', '1',
                          '--domain-id', str(ros_domain_id), '--out', str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f'ROS_DOMAIN_ID {ros_domain_id}' in run.stdout
    assert 'reasoning of' in run.stdout and 'trace-tiny' in run.stdout
    assert 'Goal subtype' in run.stdout  # the model's chain of reasoning, as published
    (episode,) = json.loads((tmp_path / 'episodes.json').read_text())
    assert f'{int(episode["success"])}/1 placements succeeded' in run.stdout
    assert (tmp_path / 'scene5.png').exists()
    assert episode['inference_s'] > 0
    if episode['status'] == 'OK':  # a goal went to the executor, which carried it out
        assert 'goal in world' in run.stdout and episode['execution_s'] > 0
        assert episode['loop_s'] >= episode['inference_s']
        assert episode['success'] or episode['reason']
    else:  # no goal: the node's status says why
        assert not episode['success'] and episode['reason'].startswith(episode['status'])


def test_closed_loop_benchmark_runs_a_hard_relation(tmp_path, ros_domain_id):
    run = subprocess.run([sys.executable, 'scripts/bench_closed_loop.py', '--scenes', '1',
                          '--relations', 'hard', '--domain-id', str(ros_domain_id),
                          '--out', str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    (episode,) = [json.loads(line) for line in (tmp_path / 'episodes.jsonl').open()]
    assert episode['relation'] in ('between', 'closest free space')
    assert episode['model'] == 'trace-tiny' and episode['relations'] == 'hard'
    summary = json.loads((tmp_path / 'summary.json').read_text())['trace-tiny']['hard']
    assert summary['episodes'] == 1 and summary['success_rate'] == float(episode['success'])
    assert summary['inference_s']['median'] == episode['inference_s']
    assert '| trace-tiny | hard |' in run.stdout
    assert (tmp_path / 'closed_loop.png').stat().st_size > 0


def test_randomized_closed_loop_gives_trace_node_each_scenes_camera(ros_domain_id):
    import numpy as np
    import pytest
    from trace_ros.ros.closed_loop import ClosedLoop
    from trace_ros.sim.randomization import sim_camera_pose
    from trace_ros.sim.scene import CameraConfig
    default = CameraConfig().camera().world_from_optical.as_list()
    with ClosedLoop(domain_id=ros_domain_id, randomize_world=True, max_new_tokens=96) as loop:
        for seed in (2, 5):
            episode = loop.run(seed)
            pose = list(loop.trace.get_parameter('static_transform').value)
            assert pose == pytest.approx(sim_camera_pose(seed, True))
            assert not np.allclose(pose, default)
            assert episode.status not in ('NO_TRANSFORM', 'NO_FRAME', 'STALE_FRAME'), episode
            assert episode.model_id and episode.attempts >= 1
