"""PinholeCamera: intrinsics from CameraInfo fields, distortion, projection round trips."""

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
from trace_ros.core.camera import PinholeCamera

K = [525.0, 0.0, 319.5, 0.0, 523.0, 241.0, 0.0, 0.0, 1.0]
PLUMB_BOB = [-0.28, 0.07, 1e-3, -5e-4, -0.01]
# Azure-Kinect-like rational polynomial coefficients: k1 k2 p1 p2 k3 k4 k5 k6.
RATIONAL = [0.45, -2.6, 2e-4, -1e-4, 1.5, 0.33, -2.4, 1.4]
CAMERAS = {
    'ideal': PinholeCamera.from_camera_info(640, 480, K, [], ''),
    'plumb_bob': PinholeCamera.from_camera_info(640, 480, K, PLUMB_BOB, 'plumb_bob'),
    'rational': PinholeCamera.from_camera_info(640, 480, K, RATIONAL, 'rational_polynomial'),
}


def image_grid(camera: PinholeCamera, step: int = 16) -> np.ndarray:
    """Pixels covering the whole image, corners included."""
    u = np.append(np.arange(0, camera.width, step), camera.width - 1)
    v = np.append(np.arange(0, camera.height, step), camera.height - 1)
    return np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2).astype(np.float64)


def test_from_fovy_follows_ros_pixel_centres():
    camera = PinholeCamera.from_fovy(640, 480, 90.0)
    assert camera.k[1, 1] == pytest.approx(240.0)
    assert camera.k[0, 0] == camera.k[1, 1]
    assert (camera.k[0, 2], camera.k[1, 2]) == (319.5, 239.5)
    assert not camera.has_distortion
    # The top edge of the image (v = -0.5) is fovy / 2 above the axis.
    top = camera.deproject([[319.5, -0.5]], 1.0)[0]
    assert np.degrees(np.arctan2(-top[1], top[2])) == pytest.approx(45.0)


def test_from_camera_info_fields():
    camera = CAMERAS['plumb_bob']
    assert (camera.width, camera.height) == (640, 480)
    np.testing.assert_array_equal(camera.k, np.reshape(K, (3, 3)))
    np.testing.assert_array_equal(camera.d, PLUMB_BOB)
    assert camera.distortion_model == 'plumb_bob'
    assert camera.has_distortion
    assert not PinholeCamera.from_camera_info(640, 480, K, [0.0] * 5, 'plumb_bob').has_distortion
    four = PinholeCamera.from_camera_info(640, 480, K, PLUMB_BOB[:4], 'plumb_bob')
    np.testing.assert_array_equal(four.d, PLUMB_BOB[:4] + [0.0])


@pytest.mark.parametrize('kwargs, message', [
    ({'k': [0.0] * 9}, 'CameraInfo has no intrinsics'),
    ({'k': K[:8]}, 'K must have 9 values'),
    ({'k': [-1.0] + K[1:]}, 'positive focal lengths'),
    ({'d': [0.1] * 5, 'distortion_model': 'equidistant'}, 'unsupported distortion model'),
    ({'d': [0.1] * 5, 'distortion_model': ''}, 'unsupported distortion model'),
    ({'d': [0.1] * 8}, "'plumb_bob' takes 5"),
    ({'d': [0.0, float('nan')]}, 'must be finite'),
    ({'width': 0}, 'image size'),
    ({'k': [1e-300, 0.0, 319.5, 0.0, 1e-300, 241.0, 0.0, 0.0, 1.0]}, 'implausible focal length'),
    ({'k': [1e12] + K[1:]}, 'implausible focal length fx'),
    ({'k': K[:4] + [float('inf')] + K[5:]}, 'finite, positive focal lengths'),
    ({'k': K[:2] + [1e6] + K[3:]}, 'principal point cx'),
    ({'k': K[:5] + [-5000.0] + K[6:]}, 'principal point cy'),
    ({'k': [525.0, 1e5] + K[2:]}, 'skew'),
    ({'d': [1e300, 0.0, 0.0, 0.0, 0.0]}, 'within'),
    ({'width': 10 ** 6}, 'exceeds'),
])
def test_invalid_camera_info_is_explained(kwargs, message):
    fields = {'width': 640, 'height': 480, 'k': K, 'd': [], 'distortion_model': 'plumb_bob'}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        PinholeCamera.from_camera_info(**fields)


def test_normalized_answer_coordinates():
    camera = PinholeCamera.from_fovy(640, 480, 60.0)
    corners = camera.normalized_to_pixels([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [639.5, 479.5], [319.5, 239.5]])
    np.testing.assert_allclose(camera.pixels_to_normalized(corners),
                               [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    # The pixel a normalized point falls in is floor(x_norm * W) (Where2Place scorer).
    uv = camera.normalized_to_pixels([[0.1234, 0.987]])[0]
    assert tuple(np.floor(uv + 0.5).astype(int)) == (int(0.1234 * 640), int(0.987 * 480))
    assert camera.in_image([[-0.5, -0.5], [639.5, 479.5], [640.0, 10.0],
                            [np.nan, 1.0]]).tolist() == [True, True, False, False]


def test_known_points_project_where_expected():
    camera = CAMERAS['ideal']
    points = np.array([[0.0, 0.0, 2.0], [0.5, -0.25, 1.0], [-1.0, 1.0, 4.0]])
    expected = [[319.5, 241.0], [319.5 + 262.5, 241.0 - 130.75],
                [319.5 - 131.25, 241.0 + 130.75]]
    np.testing.assert_allclose(camera.project(points), expected)
    assert np.isnan(camera.project([[0.0, 0.0, -1.0]])).all()
    assert camera.project([0.0, 0.0, 1.0]).shape == (1, 2)


@pytest.mark.parametrize('name', sorted(CAMERAS))
def test_project_then_deproject_known_points(name):
    camera = CAMERAS[name]
    rng = np.random.default_rng(1)
    uv = image_grid(camera)
    depth = rng.uniform(0.2, 5.0, len(uv))
    points = camera.deproject(uv, depth)
    np.testing.assert_allclose(points[:, 2], depth)
    np.testing.assert_allclose(camera.project(points), uv, atol=1e-6)
    # And from 3D: points in view come back to themselves through their pixels.
    xyz = np.column_stack([rng.uniform(-0.4, 0.4, (200, 2)), np.ones(200)]) * rng.uniform(
        0.3, 3.0, (200, 1))
    np.testing.assert_allclose(camera.deproject(camera.project(xyz), xyz[:, 2]), xyz,
                               atol=1e-9)


@pytest.mark.parametrize('name', ['plumb_bob', 'rational'])
def test_distortion_round_trip_over_the_image(name):
    camera = CAMERAS[name]
    uv = image_grid(camera, step=8)
    rays = camera.pixels_to_rays(uv)
    assert np.isfinite(rays).all()
    np.testing.assert_allclose(camera.rays_to_pixels(rays), uv, atol=1e-6)
    np.testing.assert_allclose(camera.undistort_normalized(camera.distort_normalized(rays)),
                               rays, atol=1e-6)


def test_undistort_pixels_moves_barrel_corners_outwards():
    camera = CAMERAS['plumb_bob']
    centre = camera.k[:2, 2]
    corner = camera.undistort_pixels([[0.0, 0.0]])[0]
    assert np.linalg.norm(corner - centre) > np.linalg.norm(centre) * 1.01
    np.testing.assert_allclose(CAMERAS['ideal'].undistort_pixels([[0.0, 0.0]]), [[0.0, 0.0]])


@settings(max_examples=60, deadline=None)
@given(u=st.floats(-0.5, 639.5), v=st.floats(-0.5, 479.5), z=st.floats(0.05, 20.0))
def test_deproject_project_property(u, v, z):
    camera = CAMERAS['plumb_bob']
    point = camera.deproject([[u, v]], [z])
    assert point[0, 2] == pytest.approx(z)
    np.testing.assert_allclose(camera.project(point)[0], [u, v], atol=1e-6)


def test_undistortion_outside_the_model_range_is_nan():
    camera = PinholeCamera.from_camera_info(640, 480, K, [-0.5, 0.0, 0.0, 0.0, 0.0],
                                            'plumb_bob')
    # x (1 - 0.5 x^2) peaks at 0.544 (x = 0.816): larger distorted radii have no inverse.
    xy = camera.undistort_normalized([[0.6, 0.0], [0.3, 0.0], [np.nan, 0.0]])
    assert np.isnan(xy[0]).all() and np.isnan(xy[2]).all()
    np.testing.assert_allclose(camera.distort_normalized(xy[1:2]), [[0.3, 0.0]])


def test_skew_is_honoured():
    camera = PinholeCamera(640, 480, np.array([[500.0, 3.0, 320.0], [0.0, 500.0, 240.0],
                                               [0.0, 0.0, 1.0]]))
    points = np.array([[0.3, -0.2, 1.5], [-0.1, 0.25, 0.7]])
    np.testing.assert_allclose(camera.deproject(camera.project(points), points[:, 2]),
                               points, atol=1e-12)


def test_deproject_shapes_and_errors():
    camera = CAMERAS['ideal']
    assert camera.deproject([319.5, 241.0], 2.0).tolist() == [[0.0, 0.0, 2.0]]
    assert camera.deproject(np.zeros((0, 2)), np.zeros(0)).shape == (0, 3)
    with pytest.raises(ValueError, match='depth must be a scalar'):
        camera.deproject(np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match=r'shape \(N, 2\)'):
        camera.deproject(np.zeros((3, 3)), 1.0)
