"""Goal execution in simulation: success at a free spot, failures with reasons."""

import numpy as np
import pytest
from trace_ros.sim.executor import PlacementExecutor, PlacementOutcome
from trace_ros.sim.scene import generate_scene, SceneConfig, TABLE_HALF, TABLE_TOP_Z
from trace_ros.sim.task import (find_free_spot, fits_at, HARD_RELATIONS, make_task,
                                relation_phrase, target_region)


@pytest.fixture
def setup():
    scene = generate_scene(SceneConfig(seed=0))
    return scene, make_task(scene), PlacementExecutor(scene, settle_time=0.6)


def test_free_spot_in_the_region_succeeds(setup):
    scene, task, executor = setup
    outcome = executor.execute(task, task.free_spot)
    assert outcome.success, outcome.reason
    assert outcome.executed and outcome.stable and outcome.in_region
    assert outcome.support == 'table' and outcome.tilt_deg < 2 and not outcome.disturbed
    np.testing.assert_allclose(outcome.final_pose.position[:2], task.free_spot[:2], atol=0.01)
    assert outcome.object_poses[task.held] == outcome.final_pose
    assert PlacementOutcome.from_json(outcome.to_json()) == outcome


@pytest.mark.parametrize('goal, reason', [
    ((0.0, 0.0, 0.30), 'in the air'),
    ((0.0, 0.7, 0.0), 'off the table'),
    ((0.1, -0.05, -0.2), 'below the surface'),
    ((0.38, 0.58, 0.0), 'outside its reach'),
])
def test_bad_goals_fail_with_a_reason(setup, goal, reason):
    scene, task, executor = setup
    goal = (goal[0], goal[1], TABLE_TOP_Z + goal[2])
    before = executor.data.qpos.copy()
    outcome = executor.execute(task, goal)
    assert not outcome.success and not outcome.executed
    assert reason in outcome.reason
    np.testing.assert_array_equal(executor.data.qpos, before)  # nothing moved


def test_outside_the_region_is_a_failure(setup):
    scene, task, executor = setup
    for relation in ('right of', 'behind', 'in front of', 'left of'):
        region, z = target_region(scene, 'white_bowl', relation)
        spot = find_free_spot(scene, task.held, region)
        if spot is not None and not task.contains(spot):
            break
    outcome = executor.execute(task, (*spot, z))
    assert outcome.stable and outcome.in_region is False and not outcome.success
    assert 'outside the target region' in outcome.reason


@pytest.mark.parametrize('seed, index', [(0, 0), (0, 1), (1, 0), (2, 0), (3, 1)])
def test_hard_relations_free_spot_succeeds_and_a_far_spot_fails(seed, index):
    scene = generate_scene(SceneConfig(seed=seed))
    task = make_task(scene, index, HARD_RELATIONS)
    executor = PlacementExecutor(scene, settle_time=0.6)
    outcome = executor.execute(task, task.free_spot)
    assert outcome.success, outcome.reason
    assert outcome.in_region and outcome.support == 'table' and not outcome.disturbed
    grid = np.stack(np.meshgrid(np.arange(-TABLE_HALF[0], TABLE_HALF[0], 0.01),
                                np.arange(-TABLE_HALF[1], TABLE_HALF[1], 0.01)),
                    axis=-1).reshape(-1, 2)
    grid = grid[fits_at(scene, task.held, grid)]  # where it stands clear of everything
    far = grid[np.argmax(np.linalg.norm(grid - task.free_spot[:2], axis=1))]
    assert not task.contains(far)
    outcome = executor.execute(task, (*far, TABLE_TOP_Z))
    assert outcome.executed and outcome.stable and outcome.in_region is False
    assert not outcome.success and 'outside the target region' in outcome.reason
    labels = [scene.by_name(n).label for n in task.references]
    assert f'({relation_phrase(task.relation, labels)})' in outcome.reason


def test_tipping_over_and_collisions_are_reported(setup):
    scene, task, executor = setup
    bowl = scene.by_name('red_bowl')
    rim = (bowl.position[0] - 0.9 * bowl.shape.radius, bowl.position[1],
           TABLE_TOP_Z + bowl.shape.height)
    outcome = executor.place('grey_bottle', rim)
    assert outcome.executed and not outcome.stable and 'tipped over' in outcome.reason
    box = scene.by_name('purple_box')
    near = (box.position[0], box.position[1] + 0.04, TABLE_TOP_Z)
    outcome = executor.place('cyan_box', near)
    assert not outcome.success and 'would intersect' in outcome.reason
