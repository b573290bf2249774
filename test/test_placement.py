"""Surface normals from depth and placement goal poses, on synthetic planes."""

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.depth import robust_depth
from trace_ros.core.placement import (fit_plane, fit_surface, orientation_from_normal,
                                      placement_goal, surface_normal, transform_normals,
                                      transform_pose)
from trace_ros.core.transforms import quat_to_matrix, RigidTransform

CAMERA = PinholeCamera.from_camera_info(160, 120, [130.0, 0, 79.5, 0, 131.0, 60.2, 0, 0, 1],
                                        [-0.2, 0.05, 1e-3, -1e-3, 0.0], 'plumb_bob')


def plane_depth(camera: PinholeCamera, normal, point, dtype=np.float64) -> np.ndarray:
    """Z-depth image of the plane through ``point`` with ``normal`` (optical frame)."""
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    rays = camera.pixels_to_rays(np.stack([u.ravel(), v.ravel()], axis=1))
    rays = np.column_stack([rays, np.ones(len(rays))])
    with np.errstate(divide='ignore'):
        z = (np.dot(normal, point) / (rays @ normal)).reshape(camera.height, camera.width)
    z[~(z > 0)] = np.nan
    return z.astype(dtype)


def tilted_normal(tilt_deg: float, azimuth_deg: float) -> np.ndarray:
    """Return the unit normal facing the camera, tilted by ``tilt_deg`` to ``azimuth_deg``."""
    tilt, azimuth = np.radians(tilt_deg), np.radians(azimuth_deg)
    return np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth),
                     -np.cos(tilt)])


@settings(max_examples=30, deadline=None)
@given(tilt=st.floats(0.0, 60.0), azimuth=st.floats(0.0, 360.0), distance=st.floats(0.4, 3.0),
       flip=st.booleans())
def test_normal_of_tilted_planes(tilt, azimuth, distance, flip):
    normal = tilted_normal(tilt, azimuth)
    depth = plane_depth(CAMERA, -normal if flip else normal, [0.0, 0.0, distance])
    uv = np.array([[80.0, 60.0], [40.3, 30.7], [120.0, 95.0]])
    found = surface_normal(depth, CAMERA, uv, window=7)
    np.testing.assert_allclose(found, normal, atol=1e-6)  # faces the camera either way
    single = surface_normal(depth, CAMERA, uv[1:2], window=5)
    np.testing.assert_allclose(single, normal, atol=1e-6)


def test_noisy_plane_with_an_object_edge():
    rng = np.random.default_rng(3)
    normal = tilted_normal(35.0, 120.0)
    depth = plane_depth(CAMERA, normal, [0.0, 0.0, 1.2], np.float32)
    depth += rng.normal(0.0, 0.002, depth.shape).astype(np.float32)  # 2 mm noise
    depth[55:70, 84:100] -= 0.15  # a box in front of part of the window
    depth[rng.random(depth.shape) < 0.1] = np.nan
    fit = fit_surface(depth, CAMERA, [[78.0, 60.0], [82.0, 64.0]], window=15)
    union = np.zeros(depth.shape, dtype=bool)
    union[53:68, 71:86] = union[57:72, 75:90] = True
    box = np.zeros(depth.shape, dtype=bool)
    box[55:70, 84:100] = True
    valid = ~np.isnan(depth)
    assert fit.inliers <= np.count_nonzero(union & valid & ~box)  # the box was dropped
    assert fit.inliers > 0.9 * np.count_nonzero(union & valid & ~box)
    angle = np.degrees(np.arccos(np.clip(fit.normal @ normal, -1.0, 1.0)))
    assert angle < 2.0
    assert fit.rms < 0.004


def test_without_valid_depth_the_normal_faces_the_camera():
    depth = np.full((CAMERA.height, CAMERA.width), np.nan)
    centre = CAMERA.k[:2, 2]
    np.testing.assert_allclose(surface_normal(depth, CAMERA, [centre], window=5), [0, 0, -1],
                               atol=1e-12)
    off_axis = surface_normal(depth, CAMERA, [[0.0, 0.0], [10.0, 5.0]], window=5)
    assert off_axis[2] < 0 and off_axis[0] > 0 and off_axis[1] > 0
    assert np.linalg.norm(off_axis) == pytest.approx(1.0)
    assert fit_surface(depth, CAMERA, [centre]) is None


def test_fit_plane_degenerate_sets():
    assert fit_plane(np.zeros((0, 3))) is None
    assert fit_plane([[0, 0, 1], [1, 0, 1]]) is None
    assert fit_plane([[0, 0, 1], [1, 0, 1], [2, 0, 1], [3, 0, 1]]) is None  # collinear
    fit = fit_plane([[0, 0, 1], [1, 0, 1], [0, 1, 1], [np.nan, 0, 0]])
    np.testing.assert_allclose(fit.normal, [0, 0, -1], atol=1e-12)
    fit = fit_plane([[0, 0, 1], [1, 0, 1], [0, 1, 1]], viewpoint=(0, 0, 5))
    np.testing.assert_allclose(fit.normal, [0, 0, 1], atol=1e-12)


def axes(quaternion) -> np.ndarray:
    """Return the rotation matrix: its columns are the goal's x, y and z axes."""
    return quat_to_matrix(quaternion)


@settings(max_examples=60, deadline=None)
@given(tilt=st.floats(0.0, 180.0), azimuth=st.floats(0.0, 360.0))
def test_goal_orientation_follows_the_normal(tilt, azimuth):
    normal = -tilted_normal(tilt, azimuth)  # any direction
    r = axes(orientation_from_normal(normal))
    np.testing.assert_allclose(r[:, 2], normal, atol=1e-9)
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
    # x is the reference axis projected on the plane: it lies in span(reference, normal),
    # so y is perpendicular to the reference; near the reference, world y takes its place.
    if abs(normal[0]) < 0.99:
        assert r[0, 0] > 0 and abs(r[0, 1]) < 1e-9
    elif abs(normal[0]) > 0.996:
        assert r[1, 0] > 0 and abs(r[1, 1]) < 1e-9


def test_goal_position_is_the_robust_centre():
    points = np.array([[0.1, 0.2, 0.0], [0.12, 0.21, 0.0], [0.11, 0.19, 0.01],
                       [2.0, -3.0, 1.0], [np.nan, np.nan, np.nan]])
    position, quaternion = placement_goal(points, [0, 0, 1])
    np.testing.assert_allclose(position, [0.115, 0.195, 0.005])
    np.testing.assert_allclose(quaternion, [0, 0, 0, 1], atol=1e-12)
    with pytest.raises(ValueError, match='finite 3D point'):
        placement_goal(np.full((2, 3), np.nan), [0, 0, 1])
    with pytest.raises(ValueError, match='not a usable direction'):
        placement_goal(points, [0, 0, 0])


def test_table_seen_by_a_tilted_camera_gives_an_upright_goal():
    # camera_link at (0, 0, 1) pitched 50 degrees down, looking along world +x; the table is
    # the plane z = 0.
    pitch = np.radians(50.0)
    world_from_link = RigidTransform.from_rotation_matrix(
        [[np.cos(pitch), 0, np.sin(pitch)], [0, 1, 0], [-np.sin(pitch), 0, np.cos(pitch)]],
        (0.0, 0.0, 1.0))
    link_from_optical = RigidTransform.from_translation_quaternion((0, 0, 0),
                                                                   (-0.5, 0.5, -0.5, 0.5))
    world_from_optical = world_from_link @ link_from_optical
    optical_from_world = world_from_optical.inverse()
    up_optical = optical_from_world.rotate([0.0, 0.0, 1.0])
    depth = plane_depth(CAMERA, up_optical, optical_from_world.apply([0.0, 0.0, 0.0]),
                        np.float32)
    uv = CAMERA.normalized_to_pixels([[0.45, 0.5], [0.55, 0.52], [0.5, 0.6]])
    depths, valid = robust_depth(depth, uv, window=5)
    assert valid.all()
    points_world = world_from_optical.apply(CAMERA.deproject(uv, depths))
    # The depth is that of the pixel the point falls in, up to half a pixel away on the
    # slanted table (about 3 mm here).
    np.testing.assert_allclose(points_world[:, 2], 0.0, atol=5e-3)
    normal_world = transform_normals(world_from_optical, surface_normal(depth, CAMERA, uv))
    np.testing.assert_allclose(normal_world, [0, 0, 1], atol=1e-3)
    position, quaternion = placement_goal(points_world, normal_world)
    assert position[0] > 0.5 and abs(position[2]) < 5e-3
    np.testing.assert_allclose(axes(quaternion)[:, 2], [0, 0, 1], atol=1e-3)
    np.testing.assert_allclose(axes(quaternion)[:, 0], [1, 0, 0], atol=1e-3)


def test_transform_pose_matches_composition():
    world_from_camera = RigidTransform.from_translation_quaternion((0.3, -0.2, 1.1),
                                                                   (0.2, -0.7, 0.1, 0.6))
    camera_from_goal = RigidTransform.from_translation_quaternion((0.05, 0.1, 0.9),
                                                                  (0.5, 0.1, -0.3, 0.8))
    position, quaternion = transform_pose(world_from_camera, camera_from_goal.translation,
                                          camera_from_goal.rotation)
    expected = world_from_camera @ camera_from_goal
    assert RigidTransform(quaternion, position).almost_equal(expected, atol=1e-12)
    normals = transform_normals(world_from_camera, [[0, 0, 2.0], [1.0, 0, 0]])
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)
    np.testing.assert_allclose(normals[0], world_from_camera.rotation_matrix[:, 2])
