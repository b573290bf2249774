"""Build the node's output messages from a core Placement (result, goal, points, markers)."""

from typing import Optional

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, PoseArray, PoseStamped, Quaternion
import numpy as np
from std_msgs.msg import ColorRGBA, Header
from trace_ros.core.pipeline import Placement
from trace_ros.msg import CorSteps, PlacementPoint, PlacementResult
from visualization_msgs.msg import Marker, MarkerArray


def duration(seconds: float) -> Duration:
    """Seconds as builtin_interfaces/Duration."""
    seconds = max(0.0, seconds)
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def _point(xyz) -> Point:
    if not np.all(np.isfinite(xyz)):
        return Point()
    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def fill_placement(msg: PlacementResult, placement: Placement, target_frame: str) -> None:
    """Copy points, steps and goal of ``placement`` into ``msg`` (header already set)."""
    parsed = placement.parsed
    msg.steps = CorSteps(goal_subtype=parsed.goal_subtype, reference=parsed.reference,
                         target_area=parsed.target_area)
    msg.target_frame = target_frame
    msg.points = [
        PlacementPoint(x_norm=float(n[0]), y_norm=float(n[1]), u=float(px[0]), v=float(px[1]),
                       has_depth=bool(ok), depth=float(d) if ok else 0.0,
                       position_camera=_point(pc), position=_point(pt))
        for n, px, ok, d, pc, pt in zip(parsed.points, placement.pixels, placement.has_depth,
                                        placement.depths, placement.points_camera,
                                        placement.points_target)]
    header = Header(stamp=msg.header.stamp, frame_id=target_frame)
    msg.goal = goal_pose(placement, header)
    grounding = placement.grounding
    if grounding is not None:
        _fill_grounding(msg, grounding, header)


def _fill_grounding(msg: PlacementResult, grounding, header: Header) -> None:
    """Per-point validity and confidence, the unrefined goal; no goal without a valid point."""
    for i, point in enumerate(msg.points):
        point.valid, point.in_goal = bool(grounding.valid[i]), bool(grounding.in_goal[i])
        point.invalid_reason = int(grounding.reasons[i])
        point.invalid_detail = grounding.details[i]
        point.confidence = float(grounding.confidence[i])
        point.support_tilt_deg = float(grounding.tilt_deg[i])
        point.clearance = float(grounding.clearance[i])
        point.support_fraction = float(grounding.support_fraction[i])
    msg.refined = grounding.refined
    x, y, z, w = (float(v) for v in grounding.raw_orientation)
    msg.raw_goal = PoseStamped(header=header, pose=Pose(
        position=_point(grounding.raw_position), orientation=Quaternion(x=x, y=y, z=z, w=w)))
    if not grounding.ok:
        msg.goal = PoseStamped(header=header)


def goal_pose(placement: Placement, header: Header) -> PoseStamped:
    """Return the placement goal as a PoseStamped."""
    x, y, z, w = (float(v) for v in placement.orientation)
    return PoseStamped(header=header, pose=Pose(
        position=_point(placement.position), orientation=Quaternion(x=x, y=y, z=z, w=w)))


def points_pose_array(placement: Placement, header: Header) -> PoseArray:
    """All answer points with depth as poses (goal orientation) in the target frame."""
    x, y, z, w = (float(v) for v in placement.orientation)
    poses = [Pose(position=_point(p), orientation=Quaternion(x=x, y=y, z=z, w=w))
             for p, ok in zip(placement.points_target, placement.has_depth) if ok]
    return PoseArray(header=header, poses=poses)


VALID_COLOR = ColorRGBA(r=0.2, g=0.9, b=0.2, a=1.0)
INVALID_COLOR = ColorRGBA(r=1.0, g=0.2, b=0.2, a=1.0)


def markers(placement: Optional[Placement], header: Header, text: str) -> MarkerArray:
    """
    Build RViz markers: answer points (spheres), the goal (arrow) and the reasoning (text).

    Points are green where valid (grounding, else depth), red where not; no arrow when no
    point is valid.
    """
    clear = Marker(header=header, action=Marker.DELETEALL)
    if placement is None:
        return MarkerArray(markers=[clear])
    points = Marker(header=header, ns='trace/points', id=0, type=Marker.SPHERE_LIST,
                    action=Marker.ADD)
    points.scale.x = points.scale.y = points.scale.z = 0.015
    points.color = ColorRGBA(r=1.0, g=0.2, b=0.2, a=1.0)
    grounding = placement.grounding
    valid = grounding.valid if grounding is not None else placement.has_depth
    shown = np.flatnonzero(placement.has_depth)
    points.points = [_point(placement.points_target[i]) for i in shown]
    points.colors = [VALID_COLOR if valid[i] else INVALID_COLOR for i in shown]
    goal = Marker(header=header, ns='trace/goal', id=1, type=Marker.ARROW, action=Marker.ADD)
    goal.pose = goal_pose(placement, header).pose
    goal.scale.x, goal.scale.y, goal.scale.z = 0.1, 0.01, 0.01
    goal.color = ColorRGBA(r=0.2, g=1.0, b=0.2, a=1.0)
    if grounding is not None and not grounding.ok:
        goal.action = Marker.DELETE  # no goal: only the points, red, and the reasoning
    label = Marker(header=header, ns='trace/text', id=2, type=Marker.TEXT_VIEW_FACING,
                   action=Marker.ADD, text=text[-300:])
    label.pose.position = _point(placement.position + np.array([0.0, 0.0, 0.15]))
    label.scale.z = 0.03
    label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    return MarkerArray(markers=[clear, points, goal, label])


def empty_result(header: Header, instruction: str, model_id: str, status: int, message: str,
                 target_frame: str) -> PlacementResult:
    """Build a result carrying only status, message and identification."""
    return PlacementResult(header=header, instruction=instruction, model_id=model_id,
                           status=status, message=message, target_frame=target_frame)
