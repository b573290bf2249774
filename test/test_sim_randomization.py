"""
Randomized worlds: seeded, within their ranges, truthful colours, camera-relative relations.

Renders are small (at most 192 px) to keep the module fast.
"""

import colorsys
import json
import math

import numpy as np
import pytest
from trace_ros.sim.objects import ACHROMATIC, ALL_COLOURS, tint
from trace_ros.sim.randomization import draw_world, WorldRandomization
from trace_ros.sim.scene import generate_scene, SceneConfig, TABLE_TOP_Z
from trace_ros.sim.sensor import apply_sensor, SensorConfig
from trace_ros.sim.task import make_task, PlacementTask
from trace_train.data.regions import visible_mask
from trace_train.data.relations import DIRECTIONS, NoRegion, placement_region
from trace_train.data.samples import render

SMALL = WorldRandomization(max_side=192)


def test_same_seed_same_world_and_image():
    first, second = draw_world(5, SMALL), draw_world(5, SMALL)
    assert first == second and draw_world(6, SMALL) != first
    a, b = render(generate_scene(first)), render(generate_scene(second))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert draw_world(5, SMALL, view=1).world.table_half == first.world.table_half
    assert draw_world(5, SMALL, view=1).camera != first.camera


def test_config_round_trips_through_json_and_tasks():
    config = draw_world(3, SMALL)
    again = SceneConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    scene = generate_scene(config)
    assert [o.rgba for o in generate_scene(again).objects] == [o.rgba for o in scene.objects]
    task = make_task(scene)
    loaded = PlacementTask.from_json(task.to_json())
    assert loaded.scene == config and loaded.region == task.region
    default = SceneConfig().to_dict()
    assert 'world' not in default and 'roll_deg' not in default['camera']


def test_draws_cover_the_ranges():
    spec = WorldRandomization()
    views, counts, aspects, robots = [], [], set(), []
    for seed in range(60):
        config = draw_world(seed, spec)
        view, camera = config.world.view, config.camera
        views.append(view)
        counts.append(len(generate_scene(config).objects))
        aspects.add(round(view['native_width'] / view['native_height'], 2))
        robots.append(config.robot)
        assert max(camera.width, camera.height) <= spec.max_side
        assert spec.width[0] <= view['native_width'] <= spec.width[1]
        assert abs(camera.width / camera.height - view['native_width'] / view['native_height']) \
            < 0.02
        for key in ('distance', 'pitch_deg', 'yaw_deg', 'roll_deg', 'fovy_deg'):
            low, high = getattr(spec, key)
            assert low <= view[key] <= high, key
        offset = np.subtract(camera.position, camera.look_at)
        assert np.linalg.norm(offset) == pytest.approx(view['distance'], abs=1e-3)
        pitch = math.degrees(math.asin(offset[2] / np.linalg.norm(offset)))
        assert pitch == pytest.approx(view['pitch_deg'], abs=0.05)
        assert spec.lights[0] <= len(config.world.lights) <= spec.lights[1]
    yaws = np.array([v['yaw_deg'] for v in views])
    assert (np.abs(yaws) < 45).any() and (np.abs(yaws) > 135).any()
    assert min(counts) <= 3 and max(counts) >= 10
    assert aspects == {1.33, 1.78, 1.0}
    assert any(robots) and not all(robots)
    assert np.mean([v['in_view'] >= spec.min_in_view for v in views]) > 0.9


def test_tinted_colours_keep_their_names():
    rng = np.random.default_rng(0)
    names = list(ALL_COLOURS)
    palette = np.array([ALL_COLOURS[n] for n in names])
    for name in names:
        for _ in range(200):
            rgb = np.array(tint(name, rng))
            assert names[int(np.argmin(np.linalg.norm(palette - rgb, axis=1)))] == name, rgb
            if name in ACHROMATIC:
                assert colorsys.rgb_to_hsv(*rgb)[1] <= 0.06


def test_sensor_effects_change_only_the_image_and_are_seeded():
    frame = render(generate_scene(draw_world(2, SMALL)))
    sensor = SensorConfig(exposure=1.2, gamma=0.9, blur_sigma=0.8, noise_std=5.0,
                          jpeg_quality=50)
    a, b = apply_sensor(frame.rgb, sensor, 1), apply_sensor(frame.rgb, sensor, 1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == frame.rgb.shape and a.dtype == np.uint8
    assert np.abs(a.astype(float) - frame.rgb).mean() > 2
    assert np.abs(apply_sensor(frame.rgb, sensor, 2).astype(float) - a).mean() > 1
    np.testing.assert_array_equal(apply_sensor(frame.rgb, SensorConfig(), 1), frame.rgb)


def _pixel_and_depth(camera, xyz):
    (uv,), (z,) = camera.project(np.array([xyz]))
    return uv, z


@pytest.mark.parametrize('yaw', [0.0, 90.0, 180.0, -90.0, 150.0])
def test_direction_regions_follow_the_camera(yaw):
    """'left of X' lies image-left of X, 'in front of X' lower and nearer, at any yaw."""
    spec = WorldRandomization(yaw_deg=(yaw - 5, yaw + 5), max_side=192)
    checked = set()
    for seed in range(30):
        config = draw_world(seed, spec)
        scene, camera = generate_scene(config), config.camera.camera()
        frame = render(scene)
        for obj in scene.objects:
            if (frame.labels == scene.label_of(obj.name)).sum() < 40:
                continue
            base_uv, base_z = _pixel_and_depth(camera, (*obj.position[:2], TABLE_TOP_Z))
            for relation in DIRECTIONS:
                try:
                    region, _ = placement_region(scene, relation, (obj.name,))
                except NoRegion:
                    continue
                mask = visible_mask(camera, region, frame.depth)
                if mask.sum() < 30:
                    continue
                rows, cols = np.nonzero(mask)
                grid = region.grid()
                _, depths = camera.project(np.column_stack([grid, np.full(len(grid), region.z)]))
                ok = {'left of': cols.mean() < base_uv[0], 'right of': cols.mean() > base_uv[0],
                      'in front of': rows.mean() > base_uv[1] and depths.mean() < base_z,
                      'behind': rows.mean() < base_uv[1] and depths.mean() > base_z}[relation]
                assert ok, (seed, obj.name, relation, config.world.view)
                checked.add(relation)
        if len(checked) == 4:
            break
    assert checked == set(DIRECTIONS)
