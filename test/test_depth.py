"""Depth decoding to metres and robust depth under answer points."""

import warnings

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
from trace_ros.core.depth import (depth_to_metres, DepthScaleWarning, pixel_indices,
                                  robust_depth, suspicious_depth_scale)


def test_millimetres_and_metres_give_the_same_metres():
    rng = np.random.default_rng(0)
    mm = rng.integers(200, 5000, (48, 64)).astype(np.uint16)
    mm[5, 7] = 0
    metres = mm.astype(np.float32) / 1000.0
    metres[5, 7] = np.nan
    for encoding in ('16UC1', 'mono16'):
        out = depth_to_metres(mm, encoding)
        assert out.dtype == np.float32 and out.shape == mm.shape
        np.testing.assert_allclose(out, metres, rtol=1e-6)
    np.testing.assert_allclose(depth_to_metres(metres, '32FC1'), metres)
    assert np.isnan(depth_to_metres(mm, '16UC1')[5, 7])


def test_invalid_32fc1_values_become_nan():
    depth = np.array([[1.0, 0.0, -2.0], [np.nan, np.inf, -np.inf]], dtype=np.float32)
    out = depth_to_metres(depth, '32FC1')
    assert out[0, 0] == 1.0
    assert np.isnan(out.ravel()[1:]).all()
    assert not np.isnan(depth[0, 1])  # the input is not modified


def test_depth_encoding_errors():
    with pytest.raises(ValueError, match="unsupported depth encoding 'rgb8'"):
        depth_to_metres(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ValueError, match='integer array'):
        depth_to_metres(np.zeros((2, 2), np.float32), '16UC1')
    with pytest.raises(ValueError, match='float array'):
        depth_to_metres(np.zeros((2, 2), np.uint16), '32FC1')
    with pytest.raises(ValueError, match='HxW'):
        depth_to_metres(np.zeros((2, 2, 3), np.float32), '32FC1')
    assert depth_to_metres(np.ones((2, 3, 1), np.uint16), '16UC1').shape == (2, 3)


def test_millimetres_in_32fc1_are_flagged():
    depth_mm = np.full((48, 64), 850.0, dtype=np.float32)
    with pytest.warns(DepthScaleWarning, match='looks like millimetres'):
        out = depth_to_metres(depth_mm, '32FC1')
    assert out[0, 0] == 850.0
    assert 'median is 850.0' in suspicious_depth_scale(depth_mm)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        depth_to_metres(np.full((48, 64), 1.5, np.float32), '32FC1')
        depth_to_metres(depth_mm, '32FC1', check_scale=False)
        depth_to_metres(np.full((48, 64), np.nan, np.float32), '32FC1')


def test_pixel_indices_follow_the_convention():
    uv = np.array([[-0.5, -0.5], [0.49, 0.5], [639.5, 479.5], [-0.6, 3.0], [np.nan, 1.0]])
    cols, rows, inside = pixel_indices(uv, 640, 480)
    assert inside.tolist() == [True, True, True, False, False]
    assert cols[:3].tolist() == [0, 0, 639]
    assert rows[:3].tolist() == [0, 1, 479]


def test_robust_depth_ignores_holes():
    depth = np.full((20, 30), 2.0, dtype=np.float32)
    depth[8:13, 8:13] = [[0.0, np.nan, np.inf, 1.0, 0.0],
                         [np.nan, 1.1, -np.inf, 1.2, np.nan],
                         [0.0, 1.3, 1.4, np.nan, 0.0],
                         [np.inf, np.nan, 1.5, 0.0, np.nan],
                         [0.0, 0.0, np.nan, 0.0, 1.6]]
    depths, valid = robust_depth(depth, [[10.0, 10.0]], window=5)
    assert valid.tolist() == [True]
    assert depths[0] == pytest.approx(1.3, rel=1e-6)  # median of 1.0 ... 1.6
    depths, valid = robust_depth(depth, [[10.2, 9.6]], window=1)
    assert depths[0] == pytest.approx(1.4) and valid[0]


def test_even_count_takes_the_mean_of_the_middle_values():
    depth = np.full((5, 5), np.nan, dtype=np.float32)
    depth[2, 1], depth[2, 3] = 1.0, 2.0
    depths, valid = robust_depth(depth, [[2.0, 2.0]], window=3)
    assert valid[0] and depths[0] == pytest.approx(1.5)


def test_all_invalid_window_is_invalid():
    depth = np.full((20, 30), 1.0, dtype=np.float32)
    depth[0:7, 0:7] = np.nan
    depth[3, 3] = 0.0
    depths, valid = robust_depth(depth, [[3.0, 3.0], [15.0, 15.0], [40.0, 3.0]], window=5)
    assert valid.tolist() == [False, True, False]
    assert np.isnan(depths[[0, 2]]).all() and depths[1] == 1.0
    depths, valid = robust_depth(depth, np.zeros((0, 2)), window=5)
    assert depths.shape == (0,) and valid.shape == (0,)


def test_window_is_clipped_at_the_image_border():
    depth = np.full((10, 10), 3.0, dtype=np.float32)
    depth[0, 0] = 1.0
    depth[0, 1] = depth[1, 0] = 1.0
    # Only the 3x3 corner lies on the image: three 1.0 and six 3.0 (no padded copies).
    depths, valid = robust_depth(depth, [[0.0, 0.0]], window=5)
    assert valid[0] and depths[0] == 3.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), window=st.sampled_from([1, 3, 5, 7]),
       hole_fraction=st.floats(0.0, 1.0))
def test_robust_depth_matches_nanmedian(seed, window, hole_fraction):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 4.0, (24, 32)).astype(np.float32)
    depth[rng.random(depth.shape) < hole_fraction] = np.nan
    uv = rng.uniform(-0.5, [31.5, 23.5], (50, 2))
    depths, valid = robust_depth(depth, uv, window=window)
    half = window // 2
    for (u, v), d, ok in zip(uv, depths, valid):
        c, r = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        patch = depth[max(r - half, 0):r + half + 1, max(c - half, 0):c + half + 1]
        if np.isnan(patch).all():
            assert not ok and np.isnan(d)
        else:
            assert ok and d == pytest.approx(np.nanmedian(patch), rel=1e-6)
