"""
The closed loop over real nodes: trace_sim -> trace_node -> trace_goal_executor, one process.

``ClosedLoop`` starts an rclpy context on its own domain, a multi-threaded executor, the
lifecycle ``TraceNode`` (configured and activated once: the model loads once) and an
operator node. Each ``run(seed)`` adds a ``SimNode`` and a ``GoalExecutorNode`` for that
scene, publishes the scene's instruction on ``instruction`` and waits, over DDS, for
trace_node's ``placement_result`` and the executor's ``placement_outcome``; then it removes
the two scene nodes. Everything goes through the nodes' topics, as with separate processes.
"""

import dataclasses
import json
import threading
import time
from typing import List, Optional

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import String
from trace_ros.core.annotate import annotate
from trace_ros.core.status import Status
from trace_ros.msg import PlacementResult
from trace_ros.ros.goal_executor_node import GoalExecutorNode
from trace_ros.ros.images import color_to_rgb
from trace_ros.ros.sim_node import SimNode
from trace_ros.ros.trace_node import TraceNode
from trace_ros.sim.scene import CameraConfig

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The operator asks again when trace_node had no fresh frame (the CPU-rendered camera stalled).
CAMERA_STATUSES = (Status.NO_FRAME, Status.STALE_FRAME)
CAMERA_ATTEMPTS = 2
WORLD_FRAME = 'world'
CAMERA_FRAME = 'camera_color_optical_frame'


@dataclasses.dataclass
class Episode:
    """What happened to one instruction: the answer, the goal, the outcome and the timings."""

    seed: int
    task_index: int
    instruction: str
    relation: str
    model_id: str = ''
    attempts: int = 0
    status: str = ''
    message: str = ''
    reasoning: str = ''
    goal: Optional[List[float]] = None
    success: bool = False
    reason: str = ''
    render_s: float = float('nan')
    inference_s: float = float('nan')
    node_s: float = float('nan')
    execution_s: float = float('nan')
    loop_s: float = float('nan')
    before: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    after: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)

    def summary(self) -> dict:
        """Return the JSON-friendly fields (no images)."""
        values = dataclasses.asdict(self)
        values.pop('before')
        values.pop('after')
        return values

    def frame(self) -> np.ndarray:
        """Return trace_node's debug image next to the scene after the placement."""
        verdict = 'SUCCESS' if self.success else f'FAILURE: {self.reason or self.status}'
        after = None if self.after is None else annotate(self.after, np.zeros((0, 2)),
                                                         text=f'after: {verdict}')
        images = [image for image in (self.before, after) if image is not None]
        if not images:
            return np.zeros((8, 8, 3), np.uint8)
        height = max(image.shape[0] for image in images)
        return np.concatenate([np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)))
                               for image in images], axis=1)


def _seconds(duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


class Operator(Node):
    """Publishes instructions and collects results, outcomes, debug and camera images."""

    def __init__(self, context: Context):
        super().__init__('trace_operator', context=context)
        self.instructions = self.create_publisher(String, 'instruction', 10)
        self.lock = threading.Condition()
        self.results: List[PlacementResult] = []
        self.outcomes: List[dict] = []
        self.debug: List[Image] = []
        self.color: Optional[Image] = None
        self.tasks: List[dict] = []
        self.create_subscription(PlacementResult, 'placement_result', self._append(self.results),
                                 10)
        self.create_subscription(String, 'placement_outcome',
                                 self._append(self.outcomes, json.loads), 10)
        self.create_subscription(Image, 'debug_image', self._append(self.debug), 10)
        self.create_subscription(String, 'task', self._append(self.tasks, json.loads), LATCHED)
        self.create_subscription(Image, 'color/image_raw', self._on_color,
                                 qos_profile_sensor_data)

    def _append(self, into: list, convert=lambda msg: msg):
        def callback(msg) -> None:
            value = convert(msg.data if isinstance(msg, String) else msg)
            with self.lock:
                into.append(value)
                self.lock.notify_all()
        return callback

    def _on_color(self, msg: Image) -> None:
        with self.lock:
            self.color = msg
            self.lock.notify_all()

    def wait_for(self, predicate, timeout: float):
        """Wait until ``predicate()`` returns something truthy (under the lock); return it."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not (value := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return value
                self.lock.wait(left)
            return value


class ClosedLoop:
    """
    The simulated scene, trace_node and the goal executor, talking over DDS.

    ``torch_threads`` defaults to 1: with the renderer and DDS on the same few cores, more
    torch threads oversubscribe them (on 2 cores the median generation took 4 s instead of
    0.6 s with torch's default of 2 threads). ``trace_params`` sets more of trace_node's
    parameters (e.g. ``{'refine_placement': False}``). With ``randomize_world`` each scene
    is the seed's randomized world seen from its own camera, and trace_node is reconfigured
    with that camera's pose as its static transform before the scene's instruction (the
    model reloads).
    """

    def __init__(self, model: str = '', prompt_style: str = 'cor', domain_id: int = 0,
                 rate: float = 2.0, shadows: bool = True, max_new_tokens: int = 800,
                 generation_timeout: float = 120.0, settle_time: float = 1.0,
                 torch_threads: int = 1, trace_params: Optional[dict] = None,
                 randomize_world: bool = False):
        self.rate, self.shadows, self.settle_time = rate, shadows, settle_time
        self.randomize_world = randomize_world
        self._camera_pose = CameraConfig().camera().world_from_optical.as_list()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = MultiThreadedExecutor(num_threads=6, context=self.context)
        self.trace = TraceNode(context=self.context, parameter_overrides=[
            Parameter('model', value=model), Parameter('prompt_style', value=prompt_style),
            Parameter('max_new_tokens', value=max_new_tokens),
            Parameter('generation_timeout', value=generation_timeout),
            Parameter('torch_threads', value=torch_threads),
            Parameter('target_frame', value=WORLD_FRAME),
            Parameter('static_transform_parent', value=WORLD_FRAME),
            Parameter('static_transform_child', value=CAMERA_FRAME),
            Parameter('static_transform', value=self._camera_pose),
            # A CPU-rendered camera at a few Hz: frames are up to 1/rate + render time old.
            Parameter('max_frame_age', value=2.0 / rate + 1.0),
            Parameter('frame_wait_timeout', value=2.0 / rate + 1.0)]
            + [Parameter(name, value=value) for name, value in (trace_params or {}).items()])
        if self.trace.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.close()
            raise RuntimeError('trace_node did not configure (see its log above)')
        self.trace.trigger_activate()
        self.operator = Operator(self.context)
        for node in (self.trace, self.operator):
            self.executor.add_node(node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    def run(self, seed: int, task_index: int = 0, relations: str = 'normal',
            timeout: float = 300.0) -> Episode:
        """Pose the task of scene ``seed`` and follow it through the nodes to its outcome."""
        op = self.operator
        with op.lock:
            op.tasks.clear()
            op.color = None
        sim = SimNode(context=self.context, parameter_overrides=[
            Parameter('seed', value=seed), Parameter('task_index', value=task_index),
            Parameter('relations', value=relations), Parameter('rate', value=self.rate),
            Parameter('shadows', value=self.shadows),
            Parameter('randomize_world', value=self.randomize_world),
            Parameter('world_frame', value=WORLD_FRAME),
            Parameter('camera_frame', value=CAMERA_FRAME)])
        executor_node = GoalExecutorNode(context=self.context, parameter_overrides=[
            Parameter('settle_time', value=self.settle_time),
            Parameter('world_frame', value=WORLD_FRAME)])
        self._aim_trace(sim.camera.world_from_optical.as_list())
        for node in (sim, executor_node):
            self.executor.add_node(node)
        try:
            return self._episode(sim, executor_node, seed, task_index, timeout)
        finally:
            for node in (sim, executor_node):
                self.executor.remove_node(node)
                node.destroy_node()

    def _aim_trace(self, pose: List[float]) -> None:
        """Give trace_node the sim camera's pose (reconfiguring it) when the pose changed."""
        if np.allclose(pose, self._camera_pose, atol=1e-12):
            return
        self.trace.trigger_deactivate()
        self.trace.trigger_cleanup()
        self.trace.set_parameters([Parameter('static_transform', value=list(pose))])
        if self.trace.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError('trace_node did not configure with the new camera pose')
        self.trace.trigger_activate()
        self._camera_pose = list(pose)

    def _ask(self, instruction: str, timeout: float) -> tuple:
        """Publish the instruction; return its result (None: timed out) and the list marks."""
        op = self.operator
        with op.lock:
            first_result, first_outcome = len(op.results), len(op.outcomes)
            first_debug = len(op.debug)
        op.instructions.publish(String(data=instruction))
        result = op.wait_for(lambda: next((r for r in op.results[first_result:]
                                           if r.instruction == instruction), None), timeout)
        return result, first_outcome, first_debug

    def _episode(self, sim, executor_node, seed, task_index, timeout) -> Episode:
        op, task = self.operator, sim.task
        episode = Episode(seed, task_index, task.instruction, task.relation)
        ready = op.wait_for(lambda: op.tasks and op.color and executor_node.task, 60.0)
        if not ready:
            raise RuntimeError(f'scene {seed}: the sim node published no task or frames')
        renders_before = len(sim.render_seconds)
        start = time.monotonic()
        for episode.attempts in range(1, CAMERA_ATTEMPTS + 1):
            result, first_outcome, first_debug = self._ask(task.instruction, timeout)
            if result is None:
                raise TimeoutError(f'scene {seed}: no placement_result within {timeout} s')
            if result.status not in CAMERA_STATUSES:
                break
        episode.model_id, episode.status = result.model_id, Status(result.status).name
        episode.message, episode.reasoning = result.message, result.reasoning
        episode.inference_s = _seconds(result.inference_time)
        episode.node_s = _seconds(result.total_time) - episode.inference_s
        renders = list(sim.render_seconds)[renders_before:] or list(sim.render_seconds)
        episode.render_s = float(np.median(renders)) if renders else float('nan')
        if result.status != Status.OK:
            episode.reason = f'{episode.status}: {result.message}'
            return episode
        episode.goal = [result.goal.pose.position.x, result.goal.pose.position.y,
                        result.goal.pose.position.z]
        stamp = result.header.stamp.sec + result.header.stamp.nanosec * 1e-9
        outcome = op.wait_for(lambda: next((o for o in op.outcomes[first_outcome:]
                                            if abs(o.get('goal_stamp', -1) - stamp) < 1e-6),
                                           None), timeout)
        if outcome is None:
            raise TimeoutError(f'scene {seed}: no placement_outcome within {timeout} s')
        episode.loop_s = time.monotonic() - start
        episode.success, episode.reason = bool(outcome['success']), outcome.get('reason', '')
        episode.execution_s = float(outcome.get('execution_time', float('nan')))
        debug = op.wait_for(lambda: op.debug[first_debug:], 10.0)
        if debug:
            episode.before = color_to_rgb(debug[-1])
        # The sim node moves the objects on the outcome: wait for a frame rendered after it.
        frames_at_outcome = sim.frames
        if op.wait_for(lambda: sim.frames >= frames_at_outcome + 2, 10.0 + 4.0 / self.rate):
            with op.lock:
                episode.after = color_to_rgb(op.color)
        return episode

    def close(self) -> None:
        """Shut trace_node down, stop spinning and shut the context down."""
        self.executor.shutdown()
        if hasattr(self, '_spin'):
            self._spin.join(timeout=10)
        for node in (getattr(self, 'operator', None), self.trace):
            if node is not None:
                node.destroy_node()
        self.context.try_shutdown()

    def __enter__(self) -> 'ClosedLoop':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
