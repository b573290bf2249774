"""
Target regions on a horizontal surface in 3D, and their visible part in an image.

A ``Region`` is a set of world (x, y) points at height ``z``: inside every ``within``
polygon, inside at least one ``any_of`` polygon (when there are any), inside every annulus
and outside every ``exclude`` polygon. That covers everything the instructions need: a side
of an object clipped to the table, minus the inflated footprints of the other objects,
within the arm's reach. Its image mask is exact per pixel (the ray through each pixel centre
meets the plane; ``trace_ros.sim.ground_truth.plane_hits``) and drops pixels where the
rendered depth shows something in front of the plane.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from trace_ros.sim.camera import SimCamera
from trace_ros.sim.ground_truth import circle, footprint, plane_hits, points_in_polygon
from trace_ros.sim.scene import Scene

Polygon = Tuple[Tuple[float, float], ...]
GRID_STEP = 0.01  # m, the world grid on which areas and visible fractions are measured
OCCLUSION_TOLERANCE = 0.005  # m, as region_mask


DECIMALS = 5  # regions are rounded to 10 um, so they survive JSON exactly


def as_polygon(points) -> Polygon:
    """Freeze an (N, 2) array as a tuple of (x, y) pairs rounded to DECIMALS."""
    return tuple((round(float(x), DECIMALS), round(float(y), DECIMALS))
                 for x, y in np.asarray(points, float).reshape(-1, 2))


@dataclasses.dataclass(frozen=True)
class Region:
    """A region of a horizontal plane (module docstring); annuli are (cx, cy, r_min, r_max)."""

    z: float
    within: Tuple[Polygon, ...] = ()
    any_of: Tuple[Polygon, ...] = ()
    exclude: Tuple[Polygon, ...] = ()
    annuli: Tuple[Tuple[float, float, float, float], ...] = ()

    def contains(self, xy) -> np.ndarray:
        """Test whether each world (x, y) of an (N, 2) array lies in the region."""
        xy = np.asarray(xy, float).reshape(-1, 2)
        inside = np.ones(len(xy), bool)
        for polygon in self.within:
            inside &= _in_polygon(xy, polygon)
        if self.any_of:
            inside &= np.any([_in_polygon(xy, p) for p in self.any_of], axis=0)
        for polygon in self.exclude:
            inside &= ~_in_polygon(xy, polygon)
        for cx, cy, r_min, r_max in self.annuli:
            distance = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
            inside &= (distance >= r_min) & (distance <= r_max)
        return inside

    def bounds(self) -> np.ndarray:
        """Return [[x0, y0], [x1, y1]], a box holding the region (within, any_of, annuli)."""
        boxes = [np.array(p) for p in self.within]
        if self.any_of:
            points = np.concatenate([np.array(p) for p in self.any_of])
            boxes.append(np.array([points.min(axis=0), points.max(axis=0)]))
        for cx, cy, _, r_max in self.annuli:
            boxes.append(np.array([[cx - r_max, cy - r_max], [cx + r_max, cy + r_max]]))
        if not boxes:
            raise ValueError('an unbounded region (no within, any_of or annulus)')
        lo = np.max([b.min(axis=0) for b in boxes], axis=0)
        hi = np.min([b.max(axis=0) for b in boxes], axis=0)
        return np.array([lo, np.maximum(lo, hi)])

    def grid(self, step: float = GRID_STEP) -> np.ndarray:
        """Return the world (x, y) of the regular grid's cell centres inside the region."""
        (x0, y0), (x1, y1) = self.bounds()
        xs = np.arange(x0 + step / 2, x1, step)
        ys = np.arange(y0 + step / 2, y1, step)
        points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        return points[self.contains(points)]

    def area(self, step: float = GRID_STEP) -> float:
        """Return the area in square metres, measured on the grid."""
        return len(self.grid(step)) * step * step

    def to_dict(self) -> Dict:
        """Plain-data form (JSON-serializable)."""
        return {'z': self.z, 'within': [list(map(list, p)) for p in self.within],
                'any_of': [list(map(list, p)) for p in self.any_of],
                'exclude': [list(map(list, p)) for p in self.exclude],
                'annuli': [list(a) for a in self.annuli]}

    @classmethod
    def from_dict(cls, values: Dict) -> 'Region':
        """Inverse of to_dict."""
        return cls(float(values['z']),
                   *(tuple(as_polygon(p) for p in values[k])
                     for k in ('within', 'any_of', 'exclude')),
                   tuple(tuple(float(v) for v in a) for a in values['annuli']))


def _in_polygon(xy: np.ndarray, polygon: Polygon) -> np.ndarray:
    """points_in_polygon, testing only the points inside the polygon's bounding box."""
    polygon = np.asarray(polygon, float)
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    near = np.all((xy >= lo) & (xy <= hi), axis=1)
    inside = np.zeros(len(xy), bool)
    inside[near] = points_in_polygon(xy[near], polygon)
    return inside


def inflated_footprint(scene: Scene, name: str, margin: float) -> Polygon:
    """Grow an object's footprint by ``margin``: a rectangle for boxes, else a circle."""
    obj = scene.by_name(name)
    if obj.shape.box_half is None:
        count = 24  # circumscribed polygon, so the disk of radius + margin lies inside it
        radius = (obj.shape.radius + margin) / np.cos(np.pi / count)
        return as_polygon(circle(obj.position, radius, count))
    center = np.asarray(obj.position[:2])
    corners = footprint(scene, name) - center
    grown = corners + margin * np.sign(corners @ _yaw_axes(obj.yaw).T) @ _yaw_axes(obj.yaw)
    return as_polygon(grown + center)


def _yaw_axes(yaw: float) -> np.ndarray:
    """Rows: the body x and y axes in the world."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s], [-s, c]])


def visible_mask(camera: SimCamera, region: Region, depth: Optional[np.ndarray] = None,
                 tolerance: float = OCCLUSION_TOLERANCE, hits=None) -> np.ndarray:
    """
    Return the pixels whose ray meets the region (with ``depth``: and nothing in front).

    ``hits`` may pass ``plane_hits(camera, region.z)`` computed before, to save the rays.
    """
    points, t, hit = plane_hits(camera, region.z) if hits is None else hits
    (x0, y0), (x1, y1) = region.bounds()
    mask = (hit & (points[..., 0] >= x0) & (points[..., 0] <= x1)
            & (points[..., 1] >= y0) & (points[..., 1] <= y1))
    mask[mask] = region.contains(points[mask])
    if depth is not None:
        mask &= ~(np.asarray(depth) < t - tolerance)
    return mask


def visible_fraction(camera: SimCamera, region: Region, depth: np.ndarray,
                     grid: Optional[np.ndarray] = None,
                     tolerance: float = OCCLUSION_TOLERANCE) -> float:
    """Return the share of the region's grid points that land in the image, unoccluded."""
    grid = region.grid() if grid is None else grid
    if len(grid) == 0:
        return 0.0
    uv, z = camera.project(np.column_stack([grid, np.full(len(grid), region.z)]))
    cols, rows = np.floor(uv[:, 0] + 0.5), np.floor(uv[:, 1] + 0.5)
    ok = (z > 0) & (cols >= 0) & (cols < camera.width) & (rows >= 0) & (rows < camera.height)
    seen = depth[rows[ok].astype(int), cols[ok].astype(int)]
    ok[ok] = ~(seen < z[ok] - tolerance)
    return float(ok.mean())


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Erode a binary mask by a (2 radius + 1) square; pixels off the image are outside."""
    out = mask.copy()
    for _ in range(radius):
        padded = np.pad(out, 1)
        out = out & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        out &= padded[:-2, :-2] & padded[2:, 2:] & padded[:-2, 2:] & padded[2:, :-2]
    return out


def normalized_box(mask: np.ndarray) -> Sequence[float]:
    """Return the normalized (x0, y0, x1, y1) box covering the mask's pixels."""
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return (cols.min() / width, rows.min() / height,
            (cols.max() + 1) / width, (rows.max() + 1) / height)
