"""Scene generation: deterministic from the seed, 3-8 named objects, apart, upright, stable."""

import itertools
import json

import mujoco
import numpy as np
import pytest
from trace_ros.sim.ground_truth import object_poses
from trace_ros.sim.objects import CATEGORIES
from trace_ros.sim.scene import (generate_scene, ROBOT_BASE, SceneConfig, TABLE_HALF,
                                 TABLE_TOP_Z)
from trace_ros.sim.task import (between_region, closest_free_distances, fits_at,
                                HARD_RELATIONS, make_task, PlacementTask, RELATIONS,
                                ring_polygon, spans_gap)


def test_same_seed_same_scene_and_task():
    a, b = generate_scene(SceneConfig(seed=5)), generate_scene(SceneConfig(seed=5))
    assert a == b
    assert a.to_mjcf() == b.to_mjcf()
    assert make_task(a) == make_task(b)
    assert generate_scene(SceneConfig(seed=6)).objects != a.objects


@pytest.mark.parametrize('seed', range(12))
def test_layout_is_valid(seed):
    scene = generate_scene(SceneConfig(seed=seed))
    assert 3 <= len(scene.objects) <= 8
    names = [o.name for o in scene.objects]
    assert len(set(names)) == len(names)
    for obj in scene.objects:
        assert obj.category in CATEGORIES and obj.label == obj.name.replace('_', ' ')
        assert obj.position[2] == TABLE_TOP_Z
        assert abs(obj.position[0]) + obj.shape.radius < TABLE_HALF[0]
        assert abs(obj.position[1]) + obj.shape.radius < TABLE_HALF[1]
    for a, b in itertools.combinations(scene.objects, 2):
        gap = np.hypot(a.position[0] - b.position[0], a.position[1] - b.position[1])
        assert gap > a.shape.radius + b.shape.radius
    task = make_task(scene)
    assert PlacementTask.from_json(task.to_json()) == task
    assert task.contains(task.free_spot) and task.held != task.reference
    assert task.scene == scene.config


def test_num_objects_and_categories_are_honoured():
    scene = generate_scene(SceneConfig(seed=1, num_objects=4, categories=('mug', 'bowl')))
    assert len(scene.objects) == 4
    assert {o.category for o in scene.objects} <= {'mug', 'bowl'}
    with pytest.raises(ValueError):
        generate_scene(SceneConfig(categories=('sofa',)))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_layout_is_stable_under_physics(seed):
    scene = generate_scene(SceneConfig(seed=seed))
    model = scene.build()
    data = scene.make_data(model)
    assert model.body('panda/link0').id > 0
    np.testing.assert_allclose(data.body('panda/link0').xpos, ROBOT_BASE, atol=1e-9)
    before = object_poses(scene, model, data)
    for _ in range(500):  # 1 s
        mujoco.mj_step(model, data)
    after = object_poses(scene, model, data)
    for name, pose in after.items():
        assert np.linalg.norm(np.subtract(pose.position, before[name].position)) < 1e-3
        assert pose.tilt_deg < 1.0


@pytest.mark.parametrize('seed, instruction, spot', [
    (0, 'Place the yellow box behind the cyan box.', (0.0171, -0.0455)),
    (1, 'Place the green box on the red plate.', (0.0318, 0.344)),
    (2, 'Place the orange can to the left of the red box.', (0.2498, -0.54)),
    (4, 'Place the purple can behind the cyan block.', (-0.1508, 0.314)),
])
def test_default_relations_draw_the_same_tasks(seed, instruction, spot):
    scene = generate_scene(SceneConfig(seed=seed))
    task = make_task(scene, 1)
    assert task.instruction == instruction
    np.testing.assert_allclose(task.free_spot[:2], spot, atol=1e-4)
    assert make_task(scene, 1, RELATIONS) == task and task.references == (task.reference,)
    old = json.loads(task.to_json())
    del old['references']  # JSON from before 'references' existed
    assert PlacementTask.from_json(json.dumps(old)) == task
    with pytest.raises(ValueError):
        make_task(scene, 1, ('left of', 'under'))


@pytest.mark.parametrize('seed', range(6))
def test_hard_relation_tasks(seed):
    scene = generate_scene(SceneConfig(seed=seed))
    for index in range(3):
        task = make_task(scene, index, HARD_RELATIONS)
        assert task.relation in HARD_RELATIONS and task.region_z == TABLE_TOP_Z
        assert task.reference == task.references[0] and task.held not in task.references
        assert task.contains(task.free_spot)
        assert PlacementTask.from_json(task.to_json()) == task
        labels = [scene.by_name(n).label for n in task.references]
        if task.relation == 'between':
            assert len(task.references) == 2 and spans_gap(scene, *task.references)
            assert task.instruction.endswith(f'between the {labels[0]} and the {labels[1]}.')
            corners = between_region(scene, *task.references)
            assert task.contains((corners[0] + corners[2]) / 2)
            assert not any(task.contains(scene.by_name(n).position) for n in task.references)
        else:
            assert len(task.references) == 1
            assert task.instruction.endswith(f'in the free space closest to the {labels[0]}.')
            ref = scene.by_name(task.reference)
            assert not task.contains(ref.position)  # on the reference is not free space
            grid = np.stack(np.meshgrid(np.arange(-TABLE_HALF[0], TABLE_HALF[0], 0.01),
                                        np.arange(-TABLE_HALF[1], TABLE_HALF[1], 0.01)),
                            axis=-1).reshape(-1, 2)
            nearest, farthest = closest_free_distances(
                np.asarray(ref.position[:2]), grid[fits_at(scene, task.held, grid)])
            distance = np.hypot(*np.subtract(task.free_spot[:2], ref.position[:2]))
            assert nearest - 0.01 <= distance <= farthest
            direction = np.subtract(task.free_spot[:2], ref.position[:2]) / distance
            beyond = np.asarray(ref.position[:2]) + direction * (farthest + 0.02)
            assert not task.contains(beyond)


def test_both_hard_relations_are_drawn():
    relations = {make_task(generate_scene(SceneConfig(seed=seed)), index,
                           HARD_RELATIONS).relation for seed in range(3) for index in range(2)}
    assert relations == set(HARD_RELATIONS)
    with pytest.raises(ValueError):
        make_task(generate_scene(SceneConfig(seed=0)), 0, ())


def test_ring_polygon_is_the_outer_polygon_minus_the_hole():
    outer = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    hole = np.array([[1, 1], [2, 1], [2, 2], [1, 2]], float)
    ring = ring_polygon(outer, hole)
    task = PlacementTask('', 'a', 'b', 'closest free space', tuple(map(tuple, ring)), 0.0,
                         (0.5, 0.5, 0.0), SceneConfig())
    inside = [(0.5, 0.5), (3.5, 3.5), (1.5, 0.5), (0.5, 1.5), (2.5, 1.5), (1.2, 2.5)]
    outside = [(1.5, 1.5), (1.1, 1.9), (4.5, 1.0), (-0.1, 2.0)]
    assert all(task.contains(p) for p in inside)
    assert not any(task.contains(p) for p in outside)
