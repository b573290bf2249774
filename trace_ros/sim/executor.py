"""
Goal execution: put the held object at a placement goal, let physics settle, judge it.

The placement is kinematic: the object is moved to the goal (upright, its yaw kept,
resting on the surface under the goal) and released, and the arm stays at home. A
scripted Panda grasp would mostly test grasping of bowls, plates and bottles, not the
placement goal a model produced, and costs seconds per goal on 2 CPU cores; the arm's
reach is still enforced. Everything after the release is physics (MuJoCo): tipping,
sliding off an edge, toppling neighbours.
"""

import dataclasses
import json
import math
from typing import Dict, List, Optional, Sequence

import mujoco
import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.ground_truth import (apply_poses, object_poses, ObjectPose,
                                        set_object_pose, support_height)
from trace_ros.sim.scene import ROBOT_BASE, Scene, TABLE_TOP_Z
from trace_ros.sim.task import PlacementTask, relation_phrase

AIR_TOLERANCE = 0.04  # a goal this far above the surface under it is "in the air" (m)
SINK_TOLERANCE = 0.04  # ... this far below it is "inside" it (m)
PENETRATION = 0.003  # deeper contact at the goal is a collision (m)
DRIFT = 0.02  # the object may move this much while settling and still be stable (m)
TILT_DEG = 10.0
SPEED, SPIN = 0.01, 0.1  # at rest below these (m/s, rad/s)
DISTURB = 0.01  # a neighbour that moved more than this was disturbed (m)


@dataclasses.dataclass
class PlacementOutcome:
    """The result of one goal: success, a reason when not, and where things ended."""

    success: bool
    reason: str
    held: str
    goal: List[float]
    executed: bool = False
    stable: bool = False
    in_region: Optional[bool] = None
    support: str = ''
    tilt_deg: float = 0.0
    drift: float = 0.0
    final_pose: Optional[ObjectPose] = None
    disturbed: List[str] = dataclasses.field(default_factory=list)
    object_poses: Dict[str, ObjectPose] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict:
        """JSON-ready dict; poses as [x, y, z, qx, qy, qz, qw]."""
        values = dataclasses.asdict(self)
        values['final_pose'] = self.final_pose.to_list() if self.final_pose else None
        values['object_poses'] = {k: p.to_list() for k, p in self.object_poses.items()}
        return values

    def to_json(self) -> str:
        """Serialize (the std_msgs/String payload)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> 'PlacementOutcome':
        """Inverse of to_json."""
        values = json.loads(text)
        if values['final_pose'] is not None:
            values['final_pose'] = ObjectPose.from_list(values['final_pose'])
        values['object_poses'] = {k: ObjectPose.from_list(v)
                                  for k, v in values['object_poses'].items()}
        return cls(**values)


def distance_to_polygon(xy: Sequence[float], polygon: Sequence[Sequence[float]]) -> float:
    """Distance from a point to a polygon's boundary."""
    p, best = np.asarray(xy[:2], float), math.inf
    poly = np.asarray(polygon, float)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(p - (a + t * (b - a)))))
    return best


class PlacementExecutor:
    """Owns a simulation of the scene; places objects and reports outcomes."""

    def __init__(self, scene: Scene, settle_time: float = 1.0):
        self.scene = scene
        self.model = scene.build()
        self.data = scene.make_data(self.model)
        self.settle_time = settle_time
        self._names = {self.model.body(o.name).id: o.name for o in scene.objects}

    def _body_name(self, geom_id: int) -> str:
        body = int(self.model.geom_bodyid[geom_id])
        if panda.is_robot_body(self.model, body):
            return 'robot'
        if body == 0:
            return 'floor'
        return self._names.get(body, self.model.body(body).name)

    def _describe(self, name: str) -> str:
        return f'the {self.scene.by_name(name).label}' if name in self._names.values() \
            else f'the {name}'

    def _check_goal(self, name: str, goal: np.ndarray):
        """(support height, support name) or raise ValueError with the reason."""
        body = self.model.body(name).id
        z, geom = support_height(self.model, self.data, goal, exclude_body=body)
        support = self._body_name(geom) if geom >= 0 else ''
        if geom < 0 or support not in self._names.values() and support != 'table':
            raise ValueError('goal is off the table: below it is '
                             f'{self._describe(support) if support else "nothing"}')
        reach = panda.horizontal_distance(ROBOT_BASE, goal)
        if not panda.MIN_REACH <= reach <= panda.REACH:
            raise ValueError(f'goal is {reach:.2f} m from the arm base, outside its reach '
                             f'({panda.MIN_REACH:.2f}-{panda.REACH:.2f} m)')
        if goal[2] - z > AIR_TOLERANCE:
            raise ValueError(f'goal is in the air: {goal[2] - z:.2f} m above '
                             f'{self._describe(support)} below it')
        if z - goal[2] > SINK_TOLERANCE:
            raise ValueError(f'goal is {z - goal[2]:.2f} m below the surface of '
                             f'{self._describe(support)} (inside it)')
        return z, support

    def _collisions(self, body: int) -> List[str]:
        hits = set()
        for contact in self.data.contact[:self.data.ncon]:
            bodies = self.model.geom_bodyid[[contact.geom1, contact.geom2]]
            if body in bodies and contact.dist < -PENETRATION:
                other = contact.geom2 if bodies[0] == body else contact.geom1
                hits.add(self._describe(self._body_name(other)))
        return sorted(hits)

    def place(self, name: str, goal: Sequence[float],
              task: Optional[PlacementTask] = None) -> PlacementOutcome:
        """Move object ``name`` to the world point ``goal`` (x, y, surface z) and judge."""
        obj = self.scene.by_name(name)
        goal = np.asarray(goal, float)
        outcome = PlacementOutcome(False, '', obj.name, [float(v) for v in goal])
        before = object_poses(self.scene, self.model, self.data)
        outcome.object_poses = before
        try:
            support_z, outcome.support = self._check_goal(obj.name, goal)
        except ValueError as exc:
            outcome.reason = str(exc)
            return outcome
        yaw = before[obj.name].yaw
        start = ObjectPose((goal[0], goal[1], support_z + 0.001),
                           (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)))
        set_object_pose(self.model, self.data, obj.name, start)
        mujoco.mj_forward(self.model, self.data)
        body = self.model.body(obj.name).id
        blocked = self._collisions(body)
        if blocked:
            set_object_pose(self.model, self.data, obj.name, before[obj.name])
            mujoco.mj_forward(self.model, self.data)
            outcome.reason = f'the {obj.label} would intersect {", ".join(blocked)} at the goal'
            return outcome
        outcome.executed = True
        for _ in range(int(round(self.settle_time / self.model.opt.timestep))):
            mujoco.mj_step(self.model, self.data)
        self._judge(outcome, start, task)
        return outcome

    def _judge(self, outcome: PlacementOutcome, start: ObjectPose,
               task: Optional[PlacementTask]) -> None:
        name = outcome.held
        poses = object_poses(self.scene, self.model, self.data)
        final = outcome.final_pose = poses[name]
        velocity = self.data.joint(f'{name}/joint').qvel
        outcome.tilt_deg = final.tilt_deg
        outcome.drift = float(np.linalg.norm(np.subtract(final.position, start.position)))
        outcome.disturbed = [n for n, p in poses.items() if n != name and np.linalg.norm(
            np.subtract(p.position, outcome.object_poses[n].position)) > DISTURB]
        outcome.object_poses = poses
        label = self.scene.by_name(name).label
        problems = []
        if final.position[2] < TABLE_TOP_Z - 0.05:
            problems.append(f'the {label} fell off the table')
        elif final.tilt_deg > TILT_DEG:
            problems.append(f'the {label} tipped over (tilt {final.tilt_deg:.0f} deg)')
        elif outcome.drift > DRIFT:
            problems.append(f'the {label} slid {outcome.drift * 100:.1f} cm after release')
        elif np.linalg.norm(velocity[:3]) > SPEED or np.linalg.norm(velocity[3:]) > SPIN:
            problems.append(f'the {label} is still moving')
        outcome.stable = not problems
        if outcome.disturbed:
            knocked = ', '.join(self.scene.by_name(n).label for n in outcome.disturbed)
            problems.append(f'it knocked the {knocked}')
        if task is not None:
            outcome.in_region = task.contains(final.position)
            if not outcome.in_region:
                miss = distance_to_polygon(final.position, task.region)
                where = relation_phrase(task.relation, [self.scene.by_name(n).label
                                                        for n in task.references])
                problems.append(f'the {label} ended {miss * 100:.1f} cm outside the target '
                                f'region ({where})')
        outcome.success = not problems
        outcome.reason = '; '.join(problems)

    def execute(self, task: PlacementTask, goal: Sequence[float]) -> PlacementOutcome:
        """Place the task's held object at ``goal`` and judge it against its region."""
        return self.place(task.held, goal, task)

    def apply_poses(self, poses: Dict[str, ObjectPose]) -> None:
        """Set object poses (e.g. from another process's outcome) and update kinematics."""
        apply_poses(self.model, self.data, poses)
