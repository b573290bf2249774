"""
Depth images in metres and robust depth under answer points.

Depth is the optical-frame z in metres, float32, with NaN wherever there is no measurement
(REP 118: 16UC1/mono16 are millimetres with 0 = none; 32FC1 is metres with NaN/inf/<= 0 =
none). Pixel coordinates put pixel centres on integers (docs/DEVELOPING.md).
"""

from typing import Optional, Tuple
import warnings

import numpy as np

MILLIMETRE_ENCODINGS = ('16UC1', 'mono16')
METRE_ENCODINGS = ('32FC1',)
# A 32FC1 image whose median valid depth exceeds this many "metres" is probably in mm.
SUSPICIOUS_MEDIAN_M = 20.0


class DepthScaleWarning(UserWarning):
    """A depth image's values look like the wrong unit (e.g. millimetres in 32FC1)."""


def suspicious_depth_scale(depth_m: np.ndarray, encoding: str = '32FC1') -> Optional[str]:
    """Explain why ``depth_m`` looks like millimetres, or return None when it looks fine."""
    sample = np.asarray(depth_m)[::4, ::4]
    valid = sample[np.isfinite(sample) & (sample > 0)]
    if valid.size == 0:
        return None
    median = float(np.median(valid))
    if median <= SUSPICIOUS_MEDIAN_M:
        return None
    return (f'{encoding} depth should be in metres but its median is {median:.1f}: it looks '
            f'like millimetres; publish 16UC1 for millimetres or scale the image by 0.001')


def depth_to_metres(array: np.ndarray, encoding: str, *, check_scale: bool = True) -> np.ndarray:
    """
    Convert a decoded HxW depth image to float32 metres with NaN where invalid.

    With ``check_scale``, 32FC1 depth that looks like millimetres raises a
    DepthScaleWarning (Python shows it once per call site) and is returned unchanged.
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise ValueError(f'depth image must be HxW, got shape {array.shape}')
    if encoding in MILLIMETRE_ENCODINGS:
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f'{encoding} depth must be an integer array, got {array.dtype}')
        metres = array.astype(np.float32) * np.float32(0.001)
        metres[array <= 0] = np.nan
        return metres
    if encoding in METRE_ENCODINGS:
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f'{encoding} depth must be a float array, got {array.dtype}')
        metres = array.astype(np.float32, copy=True)
        with np.errstate(invalid='ignore'):
            metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
        if check_scale:
            message = suspicious_depth_scale(metres, encoding)
            if message is not None:
                warnings.warn(message, DepthScaleWarning, stacklevel=2)
        return metres
    raise ValueError(f"unsupported depth encoding '{encoding}' (supported: 16UC1/mono16 "
                     'millimetres, 32FC1 metres)')


def pixel_indices(uv, width: int, height: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return (cols, rows, inside): the pixel each (N, 2) point falls in, and if it is on the image.

    The pixel containing ``u`` is ``floor(u + 0.5)``; the outer edges (u = -0.5 or W - 0.5,
    i.e. normalized 0 or 1) belong to the border pixels. Indices of outside points are 0.
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid='ignore'):
        inside = ((uv[:, 0] >= -0.5) & (uv[:, 0] <= width - 0.5)
                  & (uv[:, 1] >= -0.5) & (uv[:, 1] <= height - 0.5))
    safe = np.where(inside[:, None], uv, 0.0)
    cols = np.minimum(np.floor(safe[:, 0] + 0.5).astype(np.intp), width - 1)
    rows = np.minimum(np.floor(safe[:, 1] + 0.5).astype(np.intp), height - 1)
    return cols, rows, inside


def _gather(depth_m: np.ndarray, uv, window: int) -> Tuple[np.ndarray, np.ndarray]:
    """(N, window**2) valid depths (NaN otherwise) and flat pixel indices of the cells."""
    if int(window) < 1:
        raise ValueError(f'window must be >= 1 pixel, got {window}')
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f'depth image must be HxW, got shape {depth_m.shape}')
    height, width = depth_m.shape
    cols, rows, inside = pixel_indices(uv, width, height)
    half = int(window) // 2
    offsets = np.arange(-half, half + 1)
    grid_rows = rows[:, None] + offsets
    grid_cols = cols[:, None] + offsets
    row_ok = (grid_rows >= 0) & (grid_rows < height) & inside[:, None]
    col_ok = (grid_cols >= 0) & (grid_cols < width)
    cells = len(offsets) ** 2
    on_image = (row_ok[:, :, None] & col_ok[:, None, :]).reshape(len(rows), cells)
    flat = ((grid_rows * width)[:, :, None] + grid_cols[:, None, :]).reshape(len(rows), cells)
    np.clip(flat, 0, height * width - 1, out=flat)
    values = depth_m.reshape(-1).take(flat)
    with np.errstate(invalid='ignore'):
        valid = on_image & (values > 0) & (values < np.inf)
    return np.where(valid, values, np.nan), flat


def depth_windows(depth_m: np.ndarray, uv,
                  window: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Gather the ``window`` x ``window`` neighbourhood of each (N, 2) point.

    Returns (values, cols, rows), each (N, window**2): depths (NaN where off the image,
    without a measurement (0, NaN, inf, <= 0) or around a point off the image) and the
    pixel indices of the cells. An even ``window`` is rounded up to the next odd size.
    """
    values, flat = _gather(depth_m, uv, window)
    rows, cols = np.divmod(flat, np.asarray(depth_m).shape[1])
    return values, cols, rows


def robust_depth(depth_m: np.ndarray, uv, window: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """
    Median of the valid depths in a window around each (N, 2) pixel: (depths, valid).

    ``depths`` is (N,) float64 metres, NaN where the window holds no valid depth (or the
    point is off the image); ``valid`` is the matching (N,) bool mask.
    """
    values = _gather(depth_m, uv, window)[0]
    if values.shape[0] == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    # NaN sorts last, so the median of each row's n valid values sits at (n - 1) // 2, n // 2.
    ordered = np.sort(values, axis=1)
    count = np.count_nonzero(~np.isnan(ordered), axis=1)
    valid = count > 0
    index = np.arange(len(ordered))
    low = ordered[index, np.maximum(count - 1, 0) // 2]
    high = ordered[index, count // 2 - (count == 0)]
    depths = np.where(valid, 0.5 * (low.astype(np.float64) + high), np.nan)
    return depths, valid
