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
    msg.goal = goal_pose(placement, Header(stamp=msg.header.stamp, frame_id=target_frame))


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


def markers(placement: Optional[Placement], header: Header, text: str) -> MarkerArray:
    """Build RViz markers: answer points (spheres), the goal (arrow) and the reasoning (text)."""
    clear = Marker(header=header, action=Marker.DELETEALL)
    if placement is None:
        return MarkerArray(markers=[clear])
    points = Marker(header=header, ns='trace/points', id=0, type=Marker.SPHERE_LIST,
                    action=Marker.ADD)
    points.scale.x = points.scale.y = points.scale.z = 0.015
    points.color = ColorRGBA(r=1.0, g=0.2, b=0.2, a=1.0)
    points.points = [_point(p) for p, ok in zip(placement.points_target, placement.has_depth)
                     if ok]
    goal = Marker(header=header, ns='trace/goal', id=1, type=Marker.ARROW, action=Marker.ADD)
    goal.pose = goal_pose(placement, header).pose
    goal.scale.x, goal.scale.y, goal.scale.z = 0.1, 0.01, 0.01
    goal.color = ColorRGBA(r=0.2, g=1.0, b=0.2, a=1.0)
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
