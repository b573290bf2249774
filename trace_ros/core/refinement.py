"""
Physically grounded placement: per-point validity and confidence, and the goal among them.

``ground_placement`` judges every answer point with ``trace_ros.core.support`` (horizontal
support, footprint free of obstacles, not off an edge, not on the background) and scores it
with the model's own confidence (``trace_ros.core.confidence``). Valid points on the same
support within two footprint diameters of each other form clusters; the goal is the cluster
with the highest total confidence (each point counts 1 when the backend gives none): its
median when that point is valid too, else its member nearest the median, oriented along
its support's normal. Without valid points the result says why (``Grounding.message``);
the model's raw points and the unrefined goal stay in the Placement either way.
"""

import collections
import dataclasses
from typing import Optional

import numpy as np
from trace_ros.core.confidence import point_confidences, TokenLogprobs
from trace_ros.core.pipeline import Placement, RgbdFrame
from trace_ros.core.placement import orientation_from_normal
from trace_ros.core.support import (assess_point, assess_points, PointSupport, Reason,
                                    scene_support_height, SupportParams)
from trace_ros.core.transforms import RigidTransform


@dataclasses.dataclass(frozen=True)
class Grounding:
    """Per-point verdicts (arrays of N) and the unrefined goal, next to the refined one."""

    valid: np.ndarray
    reasons: tuple
    details: tuple
    confidence: np.ndarray
    tilt_deg: np.ndarray
    clearance: np.ndarray
    support_fraction: np.ndarray
    in_goal: np.ndarray
    raw_position: np.ndarray
    raw_orientation: np.ndarray
    refined: bool
    message: str = ''

    @property
    def ok(self) -> bool:
        """Whether there is a goal: refinement off, or at least one valid point."""
        return not self.refined or bool(self.valid.any())


def support_params(config, footprint_radius: float = 0.0) -> Optional[SupportParams]:
    """
    Return SupportParams from trace_node's parameters (any object with their names).

    None when ``config.refine_placement`` is off; ``footprint_radius`` > 0 (an action
    goal's) overrides the parameter.
    """
    if not config.refine_placement:
        return None
    return SupportParams(footprint_radius=footprint_radius or config.footprint_radius,
                         tilt_limit_deg=config.support_tilt_limit,
                         obstacle_height=config.obstacle_height,
                         tolerance=config.support_tolerance,
                         min_support_fraction=config.min_support_fraction,
                         max_support_drop=config.max_support_drop)


def _clusters(positions: np.ndarray, link: float, step: float) -> list:
    """Single-linkage groups (lists of indices) of points within ``link`` and ``step`` in z."""
    horizontal = np.linalg.norm(positions[:, None, :2] - positions[None, :, :2], axis=2)
    linked = (horizontal <= link) & (np.abs(positions[:, None, 2] - positions[None, :, 2])
                                     <= step)
    unseen, groups = set(range(len(positions))), []
    while unseen:
        queue, group = [unseen.pop()], []
        while queue:
            i = queue.pop()
            group.append(i)
            for j in np.flatnonzero(linked[i]):
                if j in unseen:
                    unseen.remove(j)
                    queue.append(j)
        groups.append(sorted(group))
    return groups


def _summary(verdicts) -> str:
    counts = collections.Counter(v.reason for v in verdicts)
    first = {}
    for v in verdicts:
        first.setdefault(v.reason, v.detail)
    parts = [f'{n} {reason.name}' + (f' ({first[reason]})' if first[reason] else '')
             for reason, n in counts.items()]
    return 'no answer point is a valid placement: ' + '; '.join(parts)


def _grounding(placement: Placement, verdicts, confidence, in_goal, refined,
               message='') -> Grounding:
    def field(name):
        return np.array([getattr(v, name) for v in verdicts], dtype=np.float64)
    return Grounding(
        valid=np.array([v.valid for v in verdicts], dtype=bool),
        reasons=tuple(v.reason for v in verdicts), details=tuple(v.detail for v in verdicts),
        confidence=confidence, tilt_deg=field('tilt_deg'), clearance=field('clearance'),
        support_fraction=field('support_fraction'), in_goal=in_goal,
        raw_position=placement.position, raw_orientation=placement.orientation,
        refined=refined, message=message)


def ground_placement(frame: RgbdFrame, placement: Placement,
                     target_from_camera: RigidTransform, params: Optional[SupportParams],
                     text: str = '', token_logprobs: Optional[TokenLogprobs] = None
                     ) -> Placement:
    """
    Return ``placement`` with a ``Grounding`` and, with ``params``, the refined goal.

    ``params`` None leaves the goal as it is (today's median of all points) and marks
    points with depth NOT_CHECKED; ``text`` and ``token_logprobs`` give the confidences.
    """
    confidence = point_confidences(text, placement.parsed, token_logprobs)
    has_depth = placement.has_depth
    if params is None:
        nan = np.full(len(has_depth), np.nan)
        grounding = Grounding(
            has_depth.copy(), tuple(Reason.NOT_CHECKED if ok else Reason.NO_DEPTH
                                    for ok in has_depth), ('',) * len(has_depth), confidence,
            nan, nan.copy(), nan.copy(), has_depth.copy(), placement.position,
            placement.orientation, refined=False)
        return dataclasses.replace(placement, grounding=grounding)
    depth, camera = frame.depth_m, frame.camera
    scene = scene_support_height(depth, camera, target_from_camera)
    judged = iter(assess_points(depth, camera, target_from_camera,
                                placement.points_camera[has_depth], params, scene))
    verdicts = [next(judged) if ok
                else PointSupport(Reason.NO_DEPTH, 'no valid depth around the point')
                for ok in has_depth]
    valid = np.array([v.valid for v in verdicts], dtype=bool)
    in_goal = np.zeros(len(verdicts), dtype=bool)
    if not valid.any():
        grounding = _grounding(placement, verdicts, confidence, in_goal, True,
                               _summary(verdicts))
        return dataclasses.replace(placement, grounding=grounding)
    indices = np.flatnonzero(valid)
    positions = placement.points_target[indices]
    weights = np.where(np.isfinite(confidence[indices]), confidence[indices], 1.0)
    clearance = np.array([verdicts[i].clearance for i in indices])
    groups = _clusters(positions, 4.0 * params.footprint_radius, params.obstacle_height)
    best = max(groups, key=lambda g: (weights[g].sum(), len(g), clearance[g].mean()))
    members = indices[best]
    in_goal[members] = True
    median = np.median(placement.points_target[members], axis=0)
    nearest = members[int(np.argmin(np.linalg.norm(
        placement.points_target[members] - median, axis=1)))]
    position, normal = placement.points_target[nearest], verdicts[nearest].normal
    camera_from_target = target_from_camera.inverse()
    if len(members) > 1:
        check = assess_point(depth, camera, target_from_camera,
                             camera_from_target.apply(median), params, scene)
        if check.valid:
            position, normal = median, check.normal
    goal_pixel = camera.project(camera_from_target.apply(position[None, :]))[0]
    grounding = _grounding(placement, verdicts, confidence, in_goal, True)
    return dataclasses.replace(placement, position=position,
                               orientation=orientation_from_normal(normal),
                               goal_pixel=goal_pixel, grounding=grounding)
