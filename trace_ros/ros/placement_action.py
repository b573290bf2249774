"""
The FindPlacement action: each goal is one queued request; no executor thread waits for it.

goal_callback accepts a goal only if the request queue can reserve it a place (else
REJECT, at once); the execute callback is a coroutine that submits the request and awaits
a future the worker completes, so a thousand goals hold no thread. A cancel sets the
request's cancel event, which stops generation. Results are kept ``result_timeout`` s.
"""

import threading
from typing import Callable

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.qos import qos_profile_services_default, QoSProfile
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image
from trace_ros.action import FindPlacement
from trace_ros.core.status import Status
from trace_ros.ros.requests import Request

# rclpy's service default keeps 10 requests: a burst of goals or cancels lost the rest.
SERVICE_QOS = QoSProfile(depth=1000, reliability=qos_profile_services_default.reliability,
                         durability=qos_profile_services_default.durability)


class PlacementAction:
    """
    Serve FindPlacement on ``node``.

    ``reserve()`` reserves a queue place (False: reject); ``start(goal, on_text, on_done)``
    builds and submits the request in the reserved place and returns it (its ``on_done``
    fires exactly once, from any thread, with its result set).
    """

    def __init__(self, node, name: str, *, reserve: Callable[[], bool],
                 start: Callable[..., Request], result_timeout: int, callback_group):
        self._node = node
        self._reserve = reserve
        self._start = start
        self._lock = threading.Lock()
        self._requests = {}
        self._cancel_requested = set()
        self.server = ActionServer(node, FindPlacement, name,
                                   execute_callback=self._execute,
                                   goal_callback=self._on_goal,
                                   cancel_callback=self._on_cancel,
                                   callback_group=callback_group,
                                   goal_service_qos_profile=SERVICE_QOS,
                                   cancel_service_qos_profile=SERVICE_QOS,
                                   result_service_qos_profile=SERVICE_QOS,
                                   result_timeout=result_timeout)

    def _on_goal(self, goal) -> GoalResponse:
        return GoalResponse.ACCEPT if self._reserve() else GoalResponse.REJECT

    def _on_cancel(self, goal_handle) -> CancelResponse:
        key = bytes(goal_handle.goal_id.uuid)
        with self._lock:
            request = self._requests.get(key)
            if request is None:
                self._cancel_requested.add(key)
        if request is not None:
            request.cancel.set()
        return CancelResponse.ACCEPT

    async def _execute(self, goal_handle):
        goal = goal_handle.request
        key = bytes(goal_handle.goal_id.uuid)
        explicit = (goal.color, goal.depth, goal.camera_info) if goal.use_images else None
        done = Future()
        executor = self._node.executor
        text = []

        def feedback(delta: str) -> None:
            text.append(delta)
            goal_handle.publish_feedback(FindPlacement.Feedback(
                text_delta=delta, text=''.join(text), num_tokens=len(text)))

        def finished(request: Request) -> None:
            done.set_result(request.result)
            if executor is not None:
                executor.wake()  # the awaiting coroutine runs on the next executor pass

        request = self._start(goal.instruction, explicit=explicit, on_text=feedback,
                              on_done=finished, prepare=lambda r: self._register(key, r),
                              num_points=goal.num_points,
                              footprint_radius=goal.footprint_radius)
        result = await done
        with self._lock:
            self._requests.pop(key, None)
            self._cancel_requested.discard(key)
        if goal.use_images:  # rclpy keeps the goal until its result expires: drop the images
            goal.color, goal.depth, goal.camera_info = Image(), Image(), CameraInfo()
        self._set_state(goal_handle, result.status)
        return FindPlacement.Result(result=request.result)

    def _register(self, key: bytes, request: Request) -> None:
        """Map the goal to its request before it is queued; apply an earlier cancel."""
        with self._lock:
            self._requests[key] = request
            if key in self._cancel_requested:
                request.cancel.set()

    @staticmethod
    def _set_state(goal_handle, status: int) -> None:
        try:
            if status == Status.CANCELED and goal_handle.is_cancel_requested:
                goal_handle.canceled()
            elif status == Status.OK:
                goal_handle.succeed()
            else:
                goal_handle.abort()
        except Exception:  # a goal whose server was destroyed meanwhile; rclpy aborts it
            pass

    def destroy(self) -> None:
        """Destroy the server (only where no executor is waiting on it)."""
        self.server.destroy()
