"""
From a model's reply and one RGB-D frame to 3D placement points and a goal pose.

Pure computation shared by the node, the evaluation tools and the benchmarks: check the
frame, parse the answer, look up robust depth under each point, deproject, transform to
the target frame, fit the supporting surface and build the goal.
"""

import dataclasses
from typing import Optional

import numpy as np
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.depth import robust_depth
from trace_ros.core.parsing import parse_answer, ParsedAnswer
from trace_ros.core.placement import placement_goal, surface_normal
from trace_ros.core.status import PlacementError, Status
from trace_ros.core.transforms import RigidTransform


@dataclasses.dataclass(frozen=True)
class RgbdFrame:
    """A colour image, the depth registered to it (metres, NaN = none) and the camera."""

    rgb: np.ndarray
    depth_m: np.ndarray
    camera: PinholeCamera
    frame_id: str


@dataclasses.dataclass(frozen=True)
class Placement:
    """Answer points in pixels and 3D, and the placement goal in the target frame."""

    parsed: ParsedAnswer
    pixels: np.ndarray
    depths: np.ndarray
    has_depth: np.ndarray
    points_camera: np.ndarray
    points_target: np.ndarray
    position: np.ndarray
    orientation: np.ndarray
    goal_pixel: np.ndarray
    grounding: Optional[object] = None  # trace_ros.core.refinement.Grounding, when judged


def prepare_frame(rgb: np.ndarray, depth_m: np.ndarray, camera: PinholeCamera, frame_id: str,
                  *, resize_depth: bool = False, min_depth: float = 0.0,
                  max_depth: float = np.inf) -> RgbdFrame:
    """Check sizes and ranges; raise PlacementError(BAD_IMAGE) with a clear reason."""
    height, width = rgb.shape[:2]
    if depth_m.shape != (height, width):
        if not resize_depth:
            raise PlacementError(Status.BAD_IMAGE,
                                 f'depth is {depth_m.shape[1]}x{depth_m.shape[0]} but colour '
                                 f'is {width}x{height}: publish depth registered to the '
                                 'colour camera or set resize_depth_to_color')
        rows = (np.arange(height) * depth_m.shape[0] // height)[:, None]
        cols = (np.arange(width) * depth_m.shape[1] // width)[None, :]
        depth_m = depth_m[rows, cols]
    if (camera.width, camera.height) != (width, height):
        raise PlacementError(Status.BAD_IMAGE,
                             f'CameraInfo is for {camera.width}x{camera.height} images but '
                             f'colour is {width}x{height}')
    if min_depth > 0.0 or np.isfinite(max_depth):
        depth_m = np.where((depth_m >= min_depth) & (depth_m <= max_depth), depth_m, np.nan)
    return RgbdFrame(rgb, depth_m.astype(np.float32, copy=False), camera, frame_id)


def locate_placement(frame: RgbdFrame, text: str, target_from_camera: RigidTransform, *,
                     depth_window: int = 5,
                     parsed: Optional[ParsedAnswer] = None,
                     max_points: int = 0) -> Placement:
    """
    Turn the model's reply into a Placement; raise PARSE_ERROR or INVALID_DEPTH.

    ``max_points`` > 0 keeps only the model's first ``max_points`` answer points.
    """
    camera = frame.camera
    if parsed is None:
        parsed = parse_answer(text, image_size=(camera.width, camera.height))
    if 0 < max_points < len(parsed.points):
        parsed = dataclasses.replace(parsed, points=parsed.points[:max_points])
    if not parsed.ok:
        reasons = '; '.join(parsed.errors) or 'no answer points found'
        raise PlacementError(Status.PARSE_ERROR, f'no usable answer points: {reasons}')
    pixels = camera.normalized_to_pixels(parsed.points)
    depths, has_depth = robust_depth(frame.depth_m, pixels, window=depth_window)
    if not has_depth.any():
        raise PlacementError(Status.INVALID_DEPTH,
                             f'no valid depth within {depth_window}x{depth_window} px of any '
                             f'of the {len(pixels)} answer points')
    points_camera = np.full((len(pixels), 3), np.nan)
    points_camera[has_depth] = camera.deproject(pixels[has_depth], depths[has_depth])
    points_target = np.full_like(points_camera, np.nan)
    points_target[has_depth] = target_from_camera.apply(points_camera[has_depth])
    normal_camera = surface_normal(frame.depth_m, camera, pixels[has_depth],
                                   window=max(depth_window, 7))
    normal_target = target_from_camera.rotate(normal_camera)
    position, orientation = placement_goal(points_target[has_depth], normal_target)
    goal_camera = target_from_camera.inverse().apply(position[None, :])
    goal_pixel = camera.project(goal_camera)[0]
    return Placement(parsed, pixels, depths, has_depth, points_camera, points_target,
                     position, orientation, goal_pixel)
