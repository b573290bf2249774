"""
Batched geometry of the support checks (``trace_ros.core.support``): all points at once.

Each point has its own window of depth samples; the windows are padded to a common size and
kept as (P, M) planes of coordinates, so one numpy call serves every point. Per-point sample
sets of different sizes are packed to the front of padded rows with a mask (``pack``) for
MSAC: hypothesis scoring, masked medians and least-squares planes (the smallest
eigenvector of the 3x3 scatter of the inliers).
"""

import functools

import numpy as np
from trace_ros.core.camera import PinholeCamera

MAX_SIDE = 32  # samples per window side (at most 33 x 33 are used)
HYPOTHESES = 24
REFINEMENTS = 2  # least-squares refits of the best hypothesis
_NEXT, _PREV = [1, 2, 0], [2, 0, 1]  # cyclic component orders of a cross product


def windows(depth_m: np.ndarray, camera: PinholeCamera, pixels: np.ndarray,
            halves: np.ndarray):
    """
    Sample a strided window of half-size ``halves[i]`` px around each of ``pixels`` (P, 2).

    Return x, y, z (P, M), row-major within each window: a sample's ray is (x, y, 1) and
    its point z * (x, y, 1). x and y are NaN past the window's end, z there and without
    depth. The stride keeps each side at most ``MAX_SIDE + 1`` samples; windows are
    clipped to the image. NaN arithmetic is expected here and below: callers silence
    numpy's warnings (``np.errstate``).
    """
    height, width = depth_m.shape
    count = len(pixels)
    usable = np.all(np.isfinite(pixels), axis=1)[:, None]
    # Per point and axis (row, column): the first sample, the count and the stride.
    centre = np.rint(np.where(usable, pixels[:, ::-1], 0.0).clip(-1e6, 1e6)).astype(np.intp)
    halves = np.asarray(halves, dtype=np.intp)[:, None]
    strides = np.maximum(1, -(-2 * halves // MAX_SIDE))
    first = centre - halves + np.maximum(0, halves - centre + strides - 1) // strides * strides
    stop = np.minimum(centre + halves, (height - 1, width - 1)) + 1
    counts = np.where(usable, np.maximum(0, (stop - first + strides - 1) // strides), 0)
    steps = np.arange(max(int(counts.max(initial=0)), 1))
    n_rows, n_cols = np.maximum(counts.max(axis=0), 1).tolist()
    rows = first[:, :1] + strides * steps[:n_rows]
    cols = first[:, 1:] + strides * steps[:n_cols]
    outside = ~((steps[:n_rows] < counts[:, :1])[:, :, None]
                & (steps[:n_cols] < counts[:, 1:])[:, None, :]).reshape(count, -1)
    z = depth_m[np.clip(rows, 0, height - 1)[:, :, None],
                np.clip(cols, 0, width - 1)[:, None, :]].reshape(count, -1).astype(np.float64)
    z[outside | ~(z > 0)] = np.nan
    if camera.has_distortion:
        grid = np.stack(np.broadcast_arrays(cols[:, None, :], rows[:, :, None]), axis=-1)
        xy = camera.pixels_to_rays(grid.reshape(-1, 2).astype(np.float64))
        x, y = xy[:, 0].reshape(count, -1), xy[:, 1].reshape(count, -1)
    else:  # the same rays without the per-pixel Newton iterations
        fx, skew, cx = camera.k[0]
        fy, cy = camera.k[1, 1], camera.k[1, 2]
        y_rows = (rows - cy) / fy
        x = ((cols[:, None, :] - cx - skew * y_rows[:, :, None]) / fx).reshape(count, -1)
        y = np.repeat(y_rows, cols.shape[1], axis=1)
    x[outside] = np.nan
    y[outside] = np.nan
    return x, y, z


def pack(mask: np.ndarray, *planes: np.ndarray):
    """
    Gather each row's masked entries of the (P, M) ``planes``, in order, to its front.

    Return the values (P, K, len(planes)), zero past each row's count (K: the largest
    count), their mask (P, K) and the counts (P,).
    """
    count, size = mask.shape
    counts = mask.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    source = np.flatnonzero(mask)  # row by row, in order
    slots = np.arange(len(source)) - np.repeat(np.cumsum(counts) - counts, counts)
    target = source // size * width + slots
    packed = np.zeros((count * width, len(planes)))
    for i, plane in enumerate(planes):
        packed[target, i] = plane.take(source)
    return (packed.reshape(count, width, len(planes)), np.arange(width) < counts[:, None],
            counts)


def masked_median(values: np.ndarray, mask: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Return row medians (P,) of ``values`` (P, K) over ``mask`` (``counts``; NaN if 0)."""
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    rows = np.arange(len(values))
    low = ordered[rows, np.maximum(counts - 1, 0) // 2]
    high = ordered[rows, np.minimum(counts // 2, ordered.shape[1] - 1)]
    return np.where(counts > 0, (low + high) / 2, np.nan)


@functools.lru_cache(maxsize=4096)
def hypothesis_indices(count: int) -> np.ndarray:
    """Return the (2, HYPOTHESES) sample pairs of a set of ``count``: seeded, always alike."""
    pairs = np.random.default_rng(0).integers(0, count, (2, HYPOTHESES))
    pairs.setflags(write=False)
    return pairs


def _lengths(vectors: np.ndarray) -> np.ndarray:
    return np.sqrt(np.square(vectors).sum(axis=-1))


def least_squares_normals(samples: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return unit normals (P, 3) of the planes best fitting each row's masked ``samples``."""
    weights = mask.astype(np.float64)[:, None, :]
    counts = np.maximum(weights.sum(axis=2), 1.0)
    mean = np.matmul(weights, samples) / counts[:, :, None]  # (P, 1, 3)
    centred = samples - mean
    scatter = np.matmul(centred.transpose(0, 2, 1) * weights, centred)
    return np.linalg.eigh(scatter)[1][:, :, 0]  # the smallest eigenvalue's eigenvector


def plane_normals(scored: np.ndarray, scored_counts: np.ndarray, refine: np.ndarray,
                  refine_mask: np.ndarray, up: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """
    MSAC per row: unit normals (P, 3) of planes through the origin fitting the samples.

    ``scored``/``refine`` (P, K, 3) are packed sample sets (``pack``). Hypotheses: ``up``
    and planes through two seeded random samples of ``scored``, scored by truncated squared
    residuals (threshold ``tol`` (P,)). Then least squares on the inliers among ``refine``,
    the threshold shrinking to the residuals' spread (a row with < 3 inliers stops).
    """
    count = len(scored)
    rows = np.arange(count)
    pairs = np.stack([hypothesis_indices(n) for n in scored_counts.tolist()])
    ends = scored[rows[:, None, None], pairs]  # (P, 2, HYPOTHESES, 3)
    a, b = ends[:, 0], ends[:, 1]
    normals = a[..., _NEXT] * b[..., _PREV] - a[..., _PREV] * b[..., _NEXT]  # a x b
    lengths, ends_lengths = _lengths(normals), _lengths(ends)
    usable = lengths > 0.2 * ends_lengths[:, 0] * ends_lengths[:, 1] + 1e-12  # not collinear
    candidates = np.empty((count, HYPOTHESES + 1, 3))
    candidates[:, 0] = up
    np.divide(normals, lengths[:, :, None], out=candidates[:, 1:])
    residuals = np.matmul(candidates, scored.transpose(0, 2, 1))  # (P, HYPOTHESES + 1, K)
    costs = np.minimum(np.square(residuals), np.square(tol)[:, None, None]).sum(axis=2)
    costs[:, 1:][~usable] = np.inf
    normal = candidates[rows, np.argmin(costs, axis=1)]
    active = np.ones(count, dtype=bool)
    for _ in range(REFINEMENTS):
        signed = np.matmul(refine, normal[:, :, None])[:, :, 0]
        distance = np.abs(signed)
        near = refine_mask & (distance <= tol[:, None])
        counts = near.sum(axis=1)
        centre = masked_median(signed, near, counts)
        spread = 3.0 * 1.4826 * masked_median(np.abs(signed - centre[:, None]), near, counts)
        limit = np.where(counts > 0, np.minimum(np.maximum(spread, 0.25 * tol), tol), tol)
        inliers = refine_mask & (distance <= limit[:, None])
        active &= inliers.sum(axis=1) >= 3
        if not active.any():
            break
        normal = np.where(active[:, None], least_squares_normals(refine, inliers), normal)
    return normal
