"""Physically grounded placement on synthetic tabletop depth: per-point verdicts and the goal."""

import dataclasses
import re

import numpy as np
import pytest
from tabletop_depth import CAMERA, render, reply, WORLD_FROM_OPTICAL
from trace_ros.core.depth import depth_to_metres
from trace_ros.core.pipeline import locate_placement, prepare_frame
from trace_ros.core.refinement import ground_placement, support_params
from trace_ros.core.support import (assess_point, assess_points, Reason,
                                    scene_support_height, SupportParams)
from trace_ros.core.transforms import quat_to_matrix

BOX = (-0.1, 0.1, -0.1, 0.1, 0.1)  # 20 x 20 cm, 10 cm tall, its +x face towards the camera
SMALL = (-0.3, -0.26, 0.2, 0.24, 0.06)  # top smaller than the footprint
PARAMS = SupportParams()  # footprint radius 4 cm, tilt limit 10 deg, obstacles above 1 cm


def frame_of(depth):
    return prepare_frame(np.zeros((CAMERA.height, CAMERA.width, 3), np.uint8), depth, CAMERA,
                         'camera_color_optical_frame', min_depth=0.1, max_depth=10.0)


@pytest.fixture(scope='module')
def boxes():
    return frame_of(render([BOX, SMALL]))


def ground(frame, world_points, params=PARAMS, **kwargs):
    text = reply(world_points)
    placement = locate_placement(frame, text, WORLD_FROM_OPTICAL)
    return placement, ground_placement(frame, placement, WORLD_FROM_OPTICAL, params, text,
                                       **kwargs)


def tilt_of(quaternion) -> float:
    z_axis = quat_to_matrix(quaternion)[:, 2]
    return float(np.degrees(np.arccos(np.clip(z_axis[2], -1.0, 1.0))))


@pytest.mark.parametrize('name, world, reason', [
    ('on the box top', (0.0, 0.0, 0.1), Reason.NONE),
    ('on the table beside the box', (0.25, 0.0, 0.0), Reason.NONE),
    ('on the table 2 cm from the box', (0.12, 0.0, 0.0), Reason.OBSTACLE),
    ('on the side face of the box', (0.1, 0.0, 0.05), Reason.TILTED),
    ('on the floor past the table', (-2.0, 0.3, -0.75), Reason.IN_AIR),
    ('1 cm from the table edge', (0.0, 0.59, 0.0), Reason.OFF_EDGE),
    ('1 cm from the far table edge', (-0.49, 0.3, 0.0), Reason.OFF_EDGE),
    ('1 cm from the box top edge', (0.09, 0.0, 0.1), Reason.OFF_EDGE),
    ('on a box top smaller than the footprint', (-0.28, 0.22, 0.06), Reason.OFF_EDGE),
])
def test_each_point_is_judged(boxes, name, world, reason):
    _, grounded = ground(boxes, [world])
    grounding = grounded.grounding
    assert grounding.reasons[0] == reason, (name, grounding.details[0])
    assert grounding.valid[0] == (reason == Reason.NONE)
    assert bool(grounding.details[0]) == (reason != Reason.NONE)
    if reason == Reason.TILTED:
        assert grounding.tilt_deg[0] == pytest.approx(90.0, abs=2.0)
    if reason == Reason.OBSTACLE:
        assert grounding.clearance[0] == pytest.approx(0.02, abs=0.005)
    if reason == Reason.NONE:
        assert grounding.tilt_deg[0] < 1.0 and grounding.clearance[0] >= PARAMS.footprint_radius
        np.testing.assert_allclose(grounded.position, world, atol=0.005)


def test_obstacle_judged_against_the_footprint_radius(boxes):
    world = (0.17, 0.0, 0.0)  # 7 cm from the box
    assert ground(boxes, [world])[1].grounding.valid[0]
    wide = dataclasses.replace(PARAMS, footprint_radius=0.09)
    grounding = ground(boxes, [world], wide)[1].grounding
    assert grounding.reasons[0] == Reason.OBSTACLE
    assert grounding.clearance[0] == pytest.approx(0.07, abs=0.01)


def test_points_without_depth_and_in_a_hole():
    depth = render([BOX])
    depth[200:300, 50:200] = np.nan  # a hole in the depth
    frame = frame_of(depth)
    world = [(0.25, 0.0, 0.0), (0.0, 0.0, 0.1)]
    optical = WORLD_FROM_OPTICAL.inverse().apply(np.array(world))
    inside = CAMERA.project(optical)
    depth[int(inside[1, 1]) - 40:int(inside[1, 1]) + 40,
          int(inside[1, 0]) - 40:int(inside[1, 0]) + 40] = np.nan
    frame = frame_of(depth)
    placement = locate_placement(frame, reply(world), WORLD_FROM_OPTICAL)
    grounded = ground_placement(frame, placement, WORLD_FROM_OPTICAL, PARAMS)
    assert grounded.grounding.reasons == (Reason.NONE, Reason.NO_DEPTH)


def test_scene_support_is_the_table_not_the_floor(boxes):
    assert scene_support_height(boxes.depth_m, CAMERA, WORLD_FROM_OPTICAL) == pytest.approx(
        0.0, abs=0.005)


@pytest.mark.parametrize('seed', range(4))
def test_millimetre_depth_noise_gives_a_level_goal_from_one_point(seed):
    rng = np.random.default_rng(seed)
    exact = render([])
    noisy = exact + rng.normal(0.0, 0.0015, exact.shape)
    millimetres = np.round(np.nan_to_num(noisy, nan=0.0) * 1000.0).astype(np.uint16)
    millimetres[rng.random(exact.shape) < 0.05] = 0  # holes
    frame = frame_of(depth_to_metres(millimetres, '16UC1'))
    world = (rng.uniform(-0.35, 0.35), rng.uniform(-0.45, 0.45), 0.0)
    placement, grounded = ground(frame, [world])
    assert grounded.grounding.valid[0], grounded.grounding.details[0]
    assert tilt_of(grounded.orientation) <= 1.0
    assert grounded.grounding.tilt_deg[0] <= 1.0
    assert abs(grounded.position[2]) < 0.003


def test_goal_from_the_valid_cluster_not_the_median_of_all(boxes):
    world = [(0.1, 0.02, 0.05), (0.1, -0.02, 0.07), (0.1, 0.0, 0.03), (0.25, 0.0, 0.0),
             (0.27, 0.02, 0.0)]  # three on the side face, two on the table
    placement, grounded = ground(boxes, world)
    grounding = grounded.grounding
    assert grounding.refined and grounding.ok
    np.testing.assert_array_equal(grounding.valid, [False, False, False, True, True])
    np.testing.assert_array_equal(grounding.in_goal, grounding.valid)
    np.testing.assert_allclose(grounded.position[:2],
                               np.median(placement.points_target[3:, :2], axis=0), atol=1e-9)
    assert abs(grounded.position[2]) < 0.003
    assert tilt_of(grounded.orientation) < 1.0
    # The raw answer stays: the points and the unrefined goal (median of all five), which
    # lies 3 cm above the table, against the side face.
    np.testing.assert_array_equal(grounded.points_target, placement.points_target)
    np.testing.assert_array_equal(grounding.raw_position, placement.position)
    assert grounding.raw_position[2] > 0.02


def test_cluster_with_most_confidence_wins(boxes):
    world = [(0.3, 0.3, 0.0), (0.31, 0.32, 0.0), (0.3, -0.3, 0.0), (0.32, -0.31, 0.0),
             (0.29, -0.32, 0.0)]
    placement, unweighted = ground(boxes, world)
    np.testing.assert_array_equal(unweighted.grounding.in_goal, [0, 0, 1, 1, 1])
    text = reply(world)
    digits = {i for i, c in enumerate(text) if c.isdigit()}
    lists = text.index('[')
    third_tuple = [i for i, c in enumerate(text) if c == '('][2]
    tokens = [(c, -0.1 if i < third_tuple else -2.0) if i in digits and i > lists else (c, 0.0)
              for i, c in enumerate(text)]
    weighted = ground_placement(boxes, placement, WORLD_FROM_OPTICAL, PARAMS, text, tokens)
    np.testing.assert_array_equal(weighted.grounding.in_goal, [1, 1, 0, 0, 0])
    np.testing.assert_allclose(weighted.grounding.confidence,
                               np.exp([-0.1, -0.1, -2.0, -2.0, -2.0]))


def test_no_valid_point_keeps_the_raw_goal_and_says_why(boxes):
    world = [(0.1, 0.0, 0.05), (0.12, 0.0, 0.0)]
    placement, grounded = ground(boxes, world)
    grounding = grounded.grounding
    assert not grounding.ok and not grounding.valid.any()
    assert grounding.reasons == (Reason.TILTED, Reason.OBSTACLE)
    assert 'TILTED' in grounding.message and 'OBSTACLE' in grounding.message
    np.testing.assert_array_equal(grounded.position, placement.position)


def test_refinement_off_is_todays_goal(boxes):
    world = [(0.1, 0.0, 0.05), (0.25, 0.0, 0.0), (0.0, 0.0, 0.1)]
    text = reply(world)
    placement = locate_placement(boxes, text, WORLD_FROM_OPTICAL)
    unrefined = ground_placement(boxes, placement, WORLD_FROM_OPTICAL, None, text)
    np.testing.assert_array_equal(unrefined.position, placement.position)
    np.testing.assert_array_equal(unrefined.orientation, placement.orientation)
    grounding = unrefined.grounding
    assert grounding.ok and not grounding.refined
    assert grounding.reasons == (Reason.NOT_CHECKED,) * 3 and grounding.valid.all()
    assert np.isnan(grounding.confidence).all()


def test_support_params_from_node_parameters():
    @dataclasses.dataclass
    class Config:
        refine_placement: bool = True
        footprint_radius: float = 0.05
        support_tilt_limit: float = 5.0
        obstacle_height: float = 0.02
        support_tolerance: float = 0.003
        min_support_fraction: float = 0.7
        max_support_drop: float = 0.2

    params = support_params(Config())
    assert (params.footprint_radius, params.tilt_limit_deg, params.obstacle_height) == (
        0.05, 5.0, 0.02)
    assert support_params(Config(), footprint_radius=0.1).footprint_radius == 0.1
    assert support_params(Config(refine_placement=False)) is None
    with pytest.raises(ValueError):
        SupportParams(obstacle_height=0.001, tolerance=0.004)


def test_assess_point_without_depth_is_no_depth(boxes):
    verdict = assess_point(boxes.depth_m, CAMERA, WORLD_FROM_OPTICAL, [np.nan] * 3, PARAMS)
    assert verdict.reason == Reason.NO_DEPTH and not verdict.valid


@pytest.mark.parametrize('noisy', [False, True])
def test_batched_verdicts_equal_one_point_verdicts(noisy):
    rng = np.random.default_rng(7)
    depth = render([BOX, SMALL])
    hole = CAMERA.project(WORLD_FROM_OPTICAL.inverse().apply(np.array([[0.3, -0.35, 0.0]])))[0]
    depth[int(hole[1]) - 30:int(hole[1]) + 30, int(hole[0]) - 30:int(hole[0]) + 30] = np.nan
    if noisy:  # 16UC1 millimetres, 1 mm noise, 5 % holes
        depth = np.round((depth + rng.normal(0.0, 0.001, depth.shape)) * 1000.0) / 1000.0
        depth[rng.random(depth.shape) < 0.05] = np.nan
    depth = depth.astype(np.float32)
    world = [(0.0, 0.0, 0.1), (0.25, 0.0, 0.0), (0.12, 0.0, 0.0), (0.1, 0.0, 0.05),
             (-2.0, 0.3, -0.75), (0.0, 0.59, 0.0), (0.09, 0.0, 0.1), (-0.28, 0.22, 0.06),
             (0.3, -0.35, 0.0)]
    world += [(x, y, 0.0) for x, y in rng.uniform((-0.5, -0.6), (0.5, 0.6), (40, 2))]
    optical = WORLD_FROM_OPTICAL.inverse().apply(np.array(world))
    optical = np.vstack([optical, [np.nan, 0.0, 1.0], [0.0, 0.0, -1.0]])  # no depth
    scene = scene_support_height(depth, CAMERA, WORLD_FROM_OPTICAL)
    batched = assess_points(depth, CAMERA, WORLD_FROM_OPTICAL, optical, PARAMS, scene)
    assert len(batched) == len(optical)
    reasons = set()
    for point, together in zip(optical, batched):
        alone = assess_point(depth, CAMERA, WORLD_FROM_OPTICAL, point, PARAMS, scene)
        assert together.reason == alone.reason, (point, together.detail, alone.detail)
        reasons.add(alone.reason)
        # The wording must agree; its numbers are compared as floats below.
        assert re.sub(r'[\d.]+', '#', together.detail) == re.sub(r'[\d.]+', '#', alone.detail)
        np.testing.assert_allclose(together.normal, alone.normal, atol=1e-9)
        np.testing.assert_allclose(
            [together.tilt_deg, together.clearance, together.support_fraction],
            [alone.tilt_deg, alone.clearance, alone.support_fraction], rtol=0, atol=1e-6)
    assert reasons == set(Reason) - {Reason.NOT_CHECKED}, reasons


def test_max_points_keeps_the_first(boxes):
    world = [(0.25, 0.0, 0.0), (0.0, 0.0, 0.1), (0.3, 0.3, 0.0)]
    text = reply(world)
    capped = locate_placement(boxes, text, WORLD_FROM_OPTICAL, max_points=2)
    full = locate_placement(boxes, text, WORLD_FROM_OPTICAL)
    assert len(capped.parsed.points) == 2
    np.testing.assert_array_equal(capped.points_target, full.points_target[:2])
