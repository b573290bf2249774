"""RigidTransform and quaternion helpers: conventions, composition, inverse, known poses."""

from hypothesis import example, given, settings, strategies as st
import numpy as np
import pytest
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.transforms import (quat_between_vectors, quat_from_matrix, quat_multiply,
                                       quat_normalize, quat_to_matrix, RigidTransform)

# T_link_optical of REP 103 camera frames: optical z = link x, x = -link y, y = -link z.
LINK_FROM_OPTICAL = RigidTransform.from_translation_quaternion((0, 0, 0), (-0.5, 0.5, -0.5, 0.5))

unit = st.floats(-1.0, 1.0, allow_nan=False)
quaternions = st.tuples(unit, unit, unit, unit).filter(lambda q: np.linalg.norm(q) > 0.1)
translations = st.tuples(*[st.floats(-10.0, 10.0, allow_nan=False)] * 3)
transforms = st.builds(RigidTransform.from_translation_quaternion, translations, quaternions)
points = st.lists(st.tuples(*[st.floats(-5.0, 5.0, allow_nan=False)] * 3), min_size=1,
                  max_size=8).map(np.array)


def test_quaternion_matrix_known_rotations():
    half = np.sqrt(0.5)
    np.testing.assert_allclose(quat_to_matrix([0, 0, half, half]),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix([1, 0, 0, 0]), np.diag([1, -1, -1]), atol=1e-12)
    np.testing.assert_allclose(quat_from_matrix(np.diag([1.0, -1.0, -1.0])), [1, 0, 0, 0])
    np.testing.assert_allclose(quat_normalize([0, 0, 0, 2]), [0, 0, 0, 1])
    with pytest.raises(ValueError, match='cannot be normalized'):
        quat_normalize([0, 0, 0, 0])
    with pytest.raises(ValueError, match='not a rotation matrix'):
        quat_from_matrix(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match='not a rotation matrix'):
        quat_from_matrix(2.0 * np.eye(3))


@settings(max_examples=60, deadline=None)
@given(q=quaternions)
def test_quaternion_matrix_round_trip(q):
    q = quat_normalize(q)
    r = quat_to_matrix(q)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    back = quat_from_matrix(r)
    assert back[3] >= 0
    assert min(np.abs(back - q).max(), np.abs(back + q).max()) < 1e-9


@settings(max_examples=60, deadline=None)
@given(a=st.tuples(unit, unit, unit), b=st.tuples(unit, unit, unit))
@example(a=(0.0, 0.0, -1.0), b=(0.0, 2.0062828387887478e-07, 1.0))  # nearly opposite
def test_rotation_between_vectors(a, b):
    a, b = np.array(a), np.array(b)
    if np.linalg.norm(a) < 1e-3 or np.linalg.norm(b) < 1e-3:
        with pytest.raises(ValueError):
            quat_between_vectors(a * 0, b)
        return
    r = quat_to_matrix(quat_between_vectors(a, b))
    np.testing.assert_allclose(r @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-9)


def test_rotation_between_opposite_vectors():
    for a in ([0, 0, 1], [1, 0, 0], [0.3, -0.2, 0.9]):
        a = np.array(a, dtype=float)
        r = quat_to_matrix(quat_between_vectors(a, -a))
        np.testing.assert_allclose(r @ a, -a, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(a=transforms, b=transforms, c=transforms, p=points)
def test_composition_and_inverse(a, b, c, p):
    np.testing.assert_allclose((a @ b).apply(p), a.apply(b.apply(p)), atol=1e-9)
    assert ((a @ b) @ c).almost_equal(a @ (b @ c), atol=1e-9)
    assert (a @ a.inverse()).almost_equal(RigidTransform.identity(), atol=1e-9)
    assert a.inverse().inverse().almost_equal(a, atol=1e-9)
    np.testing.assert_allclose(a.inverse().apply(a.apply(p)), p, atol=1e-9)
    np.testing.assert_allclose((a @ b).as_matrix(), a.as_matrix() @ b.as_matrix(), atol=1e-9)
    assert RigidTransform.from_matrix(a.as_matrix()).almost_equal(a, atol=1e-9)
    # Rotating a vector ignores the translation; lengths are kept.
    np.testing.assert_allclose(a.rotate(p), a.apply(p) - a.translation, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(a.rotate(p), axis=1), np.linalg.norm(p, axis=1))


def test_shapes_and_validation():
    t = RigidTransform.from_translation_quaternion((1, 2, 3), (0, 0, 0, 2))
    np.testing.assert_allclose(t.rotation, [0, 0, 0, 1])
    assert t.apply([0.0, 0.0, 0.0]).tolist() == [1.0, 2.0, 3.0]
    assert t.apply(np.zeros((4, 3))).shape == (4, 3)
    assert t.rotate([1.0, 0.0, 0.0]).shape == (3,)
    with pytest.raises(ValueError, match='shape'):
        t.apply(np.zeros((4, 2)))
    with pytest.raises(ValueError, match='translation'):
        RigidTransform.from_translation_quaternion((1, 2), (0, 0, 0, 1))
    with pytest.raises(ValueError, match='homogeneous'):
        RigidTransform.from_matrix(np.ones((4, 4)))
    with pytest.raises(AttributeError):
        t.translation = np.zeros(3)


def test_camera_looking_down_at_a_table():
    # Camera 1 m above the world origin, looking straight down: T_world_optical is a
    # 180 degree turn about x (as in the test harness and REP 103).
    world_from_optical = RigidTransform.from_translation_quaternion((0, 0, 1.0), (1, 0, 0, 0))
    np.testing.assert_allclose(world_from_optical.apply([[0.1, 0.2, 1.0]]), [[0.1, -0.2, 0.0]],
                               atol=1e-12)


def test_pitched_camera_link_with_optical_frame():
    # camera_link 1 m up at x = 0.5, pitched 90 degrees down (about +y), plus the standard
    # link -> optical rotation: the image centre sees the floor below, image right is
    # world -y and image down is world -x (the top of the image faces world +x).
    world_from_link = RigidTransform.from_rotation_matrix(
        [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], (0.5, 0.0, 1.0))
    np.testing.assert_allclose(LINK_FROM_OPTICAL.apply([0, 0, 1]), [1, 0, 0], atol=1e-12)
    world_from_optical = world_from_link @ LINK_FROM_OPTICAL
    optical = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]])
    np.testing.assert_allclose(world_from_optical.apply(optical),
                               [[0.5, 0.0, 0.0], [0.5, -0.1, 0.0], [0.4, 0.0, 0.0]], atol=1e-12)
    # And a pixel: the image centre at 1 m depth is the floor point under the camera.
    camera = PinholeCamera.from_fovy(640, 480, 60.0)
    point = camera.deproject(camera.normalized_to_pixels([[0.5, 0.5]]), 1.0)
    np.testing.assert_allclose(world_from_optical.apply(point), [[0.5, 0.0, 0.0]], atol=1e-12)


def test_quaternion_product_order():
    # q_a * q_b rotates by b first: 90 deg about z, then 90 deg about x.
    half = np.sqrt(0.5)
    about_z, about_x = np.array([0, 0, half, half]), np.array([half, 0, 0, half])
    r = quat_to_matrix(quat_multiply(about_x, about_z))
    np.testing.assert_allclose(r @ [1, 0, 0], quat_to_matrix(about_x) @ [0, 1, 0], atol=1e-12)


def test_as_list_is_the_static_transform_layout():
    from trace_ros.ros.tf_source import static_transform_from_list
    t = RigidTransform.from_translation_quaternion([0.1, -0.2, 1.5], [0.0, 0.0, 0.6, 0.8])
    values = t.as_list()
    assert values == pytest.approx([0.1, -0.2, 1.5, 0.0, 0.0, 0.6, 0.8])
    assert all(type(v) is float for v in values)
    assert static_transform_from_list(values).almost_equal(t)
