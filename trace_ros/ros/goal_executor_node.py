"""
trace_goal_executor: carries placement goals out in simulation and reports the outcome.

Takes the active task (scene + held object + ground-truth region) from the sim node's
latched ``task`` topic and rebuilds the same scene from it; each PoseStamped on
``placement_goal`` (in ``world_frame``) moves the held object there, lets physics settle
and publishes a JSON outcome on ``placement_outcome``: success, the reason when not, where
the object ended, whether it is stable and inside the region, and every object's pose.
"""

import json
import time

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String
from trace_ros.ros.parameters import declare_parameters, read_config
from trace_ros.ros.sim_params import GoalExecutorConfig
from trace_ros.ros.spin import spin_node
from trace_ros.sim.executor import PlacementExecutor
from trace_ros.sim.scene import generate_scene
from trace_ros.sim.task import PlacementTask

TASK_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class GoalExecutorNode(Node):
    """Executes placement goals against the sim node's current task."""

    def __init__(self, **kwargs):
        super().__init__('trace_goal_executor', **kwargs)
        declare_parameters(self, GoalExecutorConfig)
        config = read_config(self, GoalExecutorConfig)
        self.world_frame, self.settle_time = config.world_frame, config.settle_time
        self.task = None
        self.placer = None
        self._outcomes = self.create_publisher(String, 'placement_outcome', 10)
        self.create_subscription(String, 'task', self._on_task, TASK_QOS)
        self.create_subscription(PoseStamped, 'placement_goal', self._on_goal, 10)

    def _on_task(self, msg: String) -> None:
        try:
            task = PlacementTask.from_json(msg.data)
            self.placer = PlacementExecutor(generate_scene(task.scene), self.settle_time)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            self.get_logger().error(f'cannot use the task message: {exc}')
            return
        self.task = task
        self.get_logger().info(f'task: "{task.instruction}" (scene seed {task.scene.seed})')

    def _publish(self, values: dict) -> None:
        self._outcomes.publish(String(data=json.dumps(values)))

    def _on_goal(self, msg: PoseStamped) -> None:
        goal = [msg.pose.position.x, msg.pose.position.y, msg.pose.position.z]
        base = {'success': False, 'goal': goal, 'goal_frame': msg.header.frame_id,
                'goal_stamp': msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9}
        if self.task is None:
            self._publish({**base, 'reason': 'no task received yet on the task topic '
                           '(is trace_sim running?)'})
            return
        base['instruction'] = self.task.instruction
        if msg.header.frame_id != self.world_frame:
            self._publish({**base, 'reason': f"goal frame '{msg.header.frame_id}' is not the "
                           f"world frame '{self.world_frame}' (set trace_node's target_frame "
                           f'to {self.world_frame})'})
            return
        start = time.monotonic()
        outcome = self.placer.execute(self.task, goal)
        values = {**outcome.to_dict(), **base, 'success': outcome.success,
                  'execution_time': time.monotonic() - start}
        self._publish(values)
        self.get_logger().info(f'goal {[round(v, 3) for v in goal]}: '
                               f'{"success" if outcome.success else "failure"}'
                               f'{": " + outcome.reason if outcome.reason else ""}')


def main(args=None):
    """Run trace_goal_executor until interrupted."""
    spin_node(GoalExecutorNode, args)


if __name__ == '__main__':
    main()
