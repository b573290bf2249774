"""
trace_node: RGB-D + instruction in, reasoning + 3D placement goals out.

A lifecycle node. configure loads the model and creates the entities (publishers, camera
and instruction subscriptions, the FindPlacement action) or keeps those of an earlier
configure whose settings did not change; activate opens the gate of the inputs and starts
the worker that runs the model off the executor threads; deactivate closes the gate,
answers what is pending and forgets the camera frames; cleanup frees the model. Replaced
entities, and all of them at shutdown, are destroyed by the executor at a safe point
(SafeExecutor): never under a wait set of another thread.
"""

import json
import sys
import time
from typing import Optional

from geometry_msgs.msg import PoseArray, PoseStamped
import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from trace_ros.backends import make_backend
from trace_ros.core.answer_format import reply_max_chars, reply_regex
from trace_ros.core.frames import LatestFrame
from trace_ros.core.instructions import check_instruction, decode_cdr_string
from trace_ros.core.model_profiles import resolve_profile
from trace_ros.core.status import PlacementError, Status
from trace_ros.models import model_source
from trace_ros.msg import PlacementResult
from trace_ros.ros import messages
from trace_ros.ros.answer import Answerer
from trace_ros.ros.camera_sync import CameraSync, stamp_seconds
from trace_ros.ros.executor import destroy_later, SafeExecutor
from trace_ros.ros.parameters import declare_parameters, read_config
from trace_ros.ros.params import TraceNodeConfig
from trace_ros.ros.placement_action import PlacementAction
from trace_ros.ros.requests import Request, RequestQueue
from trace_ros.ros.spin import ignore_interrupts
from trace_ros.ros.tf_source import static_transform_from_list, TransformSource
from visualization_msgs.msg import MarkerArray

LOG_THROTTLE_S = 5.0
# Instructions and results are small: deep queues keep a burst from being dropped by DDS
# before the node can answer each (BUSY when the request queue is full).
INSTRUCTION_DEPTH = 1000
RESULT_DEPTH = 100
# Seconds deactivate waits for the canceled request in progress to end.
STOP_JOIN_S = 5.0
# Python's thread switch interval while trace_node runs (the default is 5 ms). Generation
# is Python-heavy and holds the GIL; an executor thread needs it many times per camera
# callback and waited up to 5 ms each time, so 0-19 % of 30 Hz frames were lost while the
# model ran (scripts/bench_camera_rate.py, four runs; 0-1 % at 1 ms, five runs).
GIL_SWITCH_INTERVAL_S = 0.001


class TraceNode(LifecycleNode):
    """The TRACE placement node."""

    def __init__(self, **kwargs):
        super().__init__('trace_node', **kwargs)
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        declare_parameters(self, TraceNodeConfig)
        self.config: Optional[TraceNodeConfig] = None
        self._backend = None
        self._special_tokens = ()
        self._frames = LatestFrame()
        self._queue: Optional[RequestQueue] = None
        self._parts = {}  # name -> (settings key, entities, list them, destroy them)
        self._camera: Optional[CameraSync] = None
        self._outputs = {}
        self._action: Optional[PlacementAction] = None
        self._tf: Optional[TransformSource] = None
        self._future = (-np.inf, 0.0)  # when a future-stamped frame was dropped; how far ahead
        self._answerer: Optional[Answerer] = None
        self._last_log = {}
        self._camera_group = MutuallyExclusiveCallbackGroup()
        self._request_group = ReentrantCallbackGroup()
        self._action_group = ReentrantCallbackGroup()

    # -- lifecycle ---------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.config = config = read_config(self, TraceNodeConfig)
            static = static_transform_from_list(config.static_transform)
            self._profile, why = self._resolve_profile(config)
            self._backend = make_backend(**self._backend_params(config, self._profile))
        except Exception as exc:  # bad parameters or a model that does not load
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self._special_tokens = self._backend.special_tokens
        self._warn_if_replies_can_be_cut(config)
        try:
            self._create_entities(config, static)
        except Exception as exc:  # e.g. an invalid topic name in a remapping
            self.get_logger().error(f'configure failed: {exc}')
            self._release_model()
            return TransitionCallbackReturn.FAILURE
        self._answerer = Answerer(self, config, self._backend, self._tf, self._frames,
                                  self._outputs, self._future_info, self._profile)
        self.get_logger().info(f'configured: model {self._backend.model_id} '
                               f'({config.backend}), profile {self._profile.name} ({why}), '
                               f'transforms from {self._tf.backend}, '
                               f'camera sync by {self._camera.implementation}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._forget_frames()
        self._queue = RequestQueue(self.config.instruction_queue_size, self._process)
        self._camera.enabled = True
        self.get_logger().info(f'active: camera sync by {self._camera.implementation}')
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_inputs()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release_model()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release_model()
        parts, self._parts = self._parts, {}
        for _, part, entities, destroy in parts.values():
            destroy_later(self, lambda p=part, d=destroy: d(p), entities(part))
        return TransitionCallbackReturn.SUCCESS

    def _forget_frames(self) -> None:
        """No frame received before this point is ever answered on."""
        if self._camera is not None:
            self._camera.reset()
        self._frames.clear()
        self._future = (-np.inf, 0.0)

    def _stop_inputs(self) -> None:
        if self._camera is not None:
            self._camera.enabled = False
        queue, self._queue = self._queue, None  # new requests: 'not active'
        if queue is not None:
            for request in queue.stop(STOP_JOIN_S):
                self._finish(request, self._failure(
                    request, None, Status.BUSY, 'trace_node was deactivated before answering'))
        self._forget_frames()

    def _release_model(self) -> None:
        self._forget_frames()
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # -- entities: kept from configure to shutdown, replaced when their settings change -----
    def _part(self, name: str, key: tuple, create, entities=lambda part: [],
              destroy=lambda part: None):
        """Return entity group ``name``; a new ``key`` replaces it (destroyed at a safe point)."""
        current = self._parts.get(name)
        if current is not None and current[0] == key:
            return current[1]
        if current is not None:
            destroy_later(self, lambda p=current[1], d=current[3]: d(p), current[2](current[1]))
        part = create()
        self._parts[name] = (key, part, entities, destroy)
        return part

    def _create_entities(self, config: TraceNodeConfig, static) -> None:
        tf_key = (config.use_tf2, config.static_transform_parent, config.static_transform_child,
                  tuple(config.static_transform))
        self._tf = self._part('tf', tf_key, lambda: TransformSource(
            self, config.static_transform_parent, config.static_transform_child, static,
            config.use_tf2), lambda tf: tf.subscriptions, lambda tf: tf.close())
        self._outputs = self._part('outputs', (config.publish_attention,),
                                   lambda: self._create_publishers(config),
                                   destroy=lambda pubs: [self.destroy_publisher(p)
                                                         for p in pubs.values()])
        self._action = self._part(
            'action', (config.action_result_timeout,), lambda: PlacementAction(
                self, 'find_placement', reserve=self._reserve, start=self._start,
                callback_group=self._action_group, result_timeout=config.action_result_timeout),
            lambda action: [action.server], lambda action: action.destroy())
        camera_key = (config.camera_reliability, config.use_message_filters, config.sync_slop,
                      config.sync_queue_size, config.max_future_stamp)
        self._camera = self._part('camera', camera_key, lambda: CameraSync(
            self, self._on_frame, slop=config.sync_slop, queue_size=config.sync_queue_size,
            reliability=config.camera_reliability,
            use_message_filters=config.use_message_filters, callback_group=self._camera_group,
            max_future_s=config.max_future_stamp, on_future=self._on_future_frame),
            lambda camera: camera.subscriptions, lambda camera: camera.destroy())
        self._camera.enabled = False
        self._part('instructions', (), lambda: self.create_subscription(
            String, 'instruction', self._on_instruction,
            QoSProfile(depth=INSTRUCTION_DEPTH, reliability=QoSReliabilityPolicy.RELIABLE),
            callback_group=self._request_group, raw=True),
            lambda sub: [sub], self.destroy_subscription)

    def _create_publishers(self, config: TraceNodeConfig) -> dict:
        results = QoSProfile(depth=RESULT_DEPTH)
        outputs = {
            'result': self.create_publisher(PlacementResult, 'placement_result', results),
            'goal': self.create_publisher(PoseStamped, 'placement_goal', 10),
            'points': self.create_publisher(PoseArray, 'placement_points', 10),
            'reasoning': self.create_publisher(String, 'reasoning', results),
            'markers': self.create_publisher(MarkerArray, 'placement_markers', 10),
            'debug': self.create_publisher(Image, 'debug_image', 1),
        }
        if config.publish_attention:
            outputs['attention'] = self.create_publisher(Image, 'attention_image', 1)
        return outputs

    @staticmethod
    def _resolve_profile(config: TraceNodeConfig):
        """Return (model profile, why) for the configured model (docs/MODELS.md)."""
        if config.backend == 'openai':
            return resolve_profile(config.model_profile, model_name=config.openai_model)
        return resolve_profile(config.model_profile, model_source(config.model))

    def _warn_if_replies_can_be_cut(self, config: TraceNodeConfig) -> None:
        if not (config.structured_decoding and self._profile.writes_trace_format):
            return
        longest = reply_max_chars(config.prompt_style) + 1  # the end token
        if config.max_new_tokens < longest:
            self.get_logger().warning(
                f'max_new_tokens {config.max_new_tokens} < {longest}: a reply the grammar '
                'allows can be cut at the limit, and a cut reply may not parse')

    @staticmethod
    def _backend_params(config: TraceNodeConfig, profile=None) -> dict:
        options = json.loads(config.generation_options) if config.generation_options else {}
        trace_format = profile is None or profile.writes_trace_format
        regex = (reply_regex(config.prompt_style)
                 if config.structured_decoding and trace_format else None)
        if config.backend == 'openai':
            return {'kind': 'openai', 'base_url': config.openai_base_url,
                    'model': config.openai_model, 'api_key_env': config.openai_api_key_env,
                    'max_retries': config.openai_max_retries,
                    'max_new_tokens': config.max_new_tokens, 'extra_body': options,
                    'reply_regex': regex,
                    'structured_output_field': config.openai_structured_output_field}
        return {'kind': 'transformers', 'model': model_source(config.model),
                'device': config.device, 'dtype': config.dtype,
                'max_new_tokens': config.max_new_tokens, 'generation_kwargs': options,
                'num_threads': config.torch_threads, 'reply_regex': regex,
                'trust_remote_code': bool(profile and profile.setting('trust_remote_code'))}

    # -- inputs ------------------------------------------------------------------------------
    def _on_frame(self, color, depth, info) -> None:
        self._frames.put(stamp_seconds(color.header), color, depth, info)

    def _on_future_frame(self, ahead_s: float) -> None:
        self._future = (time.monotonic(), ahead_s)

    def _future_info(self):
        seen, ahead = self._future
        return time.monotonic() - seen, ahead

    def _on_instruction(self, raw: bytes) -> None:
        # Decoded here: rclpy's own conversion ends a string at its first NUL character.
        text = decode_cdr_string(raw)
        self._start(text if text is not None else deserialize_message(raw, String).data)

    def _reserve(self) -> bool:
        queue = self._queue
        return queue is not None and queue.reserve()

    def _start(self, instruction: str, explicit=None, on_text=None, on_done=None,
               prepare=None, **options) -> Request:
        """
        Check, then queue an instruction; answer BAD_INSTRUCTION or BUSY at once.

        ``options`` are Request fields (an action goal's num_points, footprint_radius).
        """
        reserved = prepare is not None  # action goals reserved their place when accepted
        request = Request(instruction, self._frames.seq, time.monotonic(), explicit=explicit,
                          on_text=on_text, on_done=on_done, **options)
        queue, config = self._queue, self.config
        try:
            request.instruction = check_instruction(instruction, config.max_instruction_chars,
                                                    self._special_tokens)
        except PlacementError as err:
            request.instruction = instruction[:config.max_instruction_chars]
            if reserved and queue is not None:
                queue.release()
            self._finish(request, self._failure(request, None, err.status, err.message))
            return request
        if prepare is not None:
            prepare(request)
        if queue is None or not queue.submit(request, reserved=reserved):
            why = ('trace_node is not active' if queue is None else
                   f'{config.instruction_queue_size} instructions are already queued')
            self._finish(request, self._failure(request, None, Status.BUSY, why))
        return request

    # -- the worker --------------------------------------------------------------------------
    def _process(self, request: Request) -> None:
        answerer = self._answerer
        try:
            result = answerer.answer(request)
        except PlacementError as err:
            result = self._failure(request, request.header, err.status, err.message)
        except Exception as exc:  # never let the worker die on one request
            result = self._failure(request, request.header, Status.BACKEND_ERROR,
                                   f'unexpected error: {exc!r}')
        self._finish(request, result)
        if request.attention_inputs is not None:
            answerer.publish_attention(request)

    # -- outputs -----------------------------------------------------------------------------
    def _failure(self, request: Request, header: Optional[Header], status: Status,
                 message: str) -> PlacementResult:
        self.log_throttled(status, f'{status.name}: {message}')
        header = header or Header(stamp=self.get_clock().now().to_msg())
        result = messages.empty_result(header, request.instruction,
                                       self._backend.model_id if self._backend else '',
                                       int(status), message,
                                       self.config.target_frame if self.config else '')
        result.reasoning = request.text
        return result

    def _finish(self, request: Request, result: PlacementResult) -> None:
        result.total_time = messages.duration(time.monotonic() - request.arrival)
        request.result = result
        outputs = self._outputs
        if 'result' in outputs:
            outputs['result'].publish(result)
            outputs['reasoning'].publish(String(data=result.reasoning))
        request.done.set()
        if request.on_done is not None:
            request.on_done(request)

    def log_throttled(self, status: Status, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log.get(status, -np.inf) >= LOG_THROTTLE_S:
            self._last_log[status] = now
            self.get_logger().warning(text)


def main(args=None):
    """
    Run trace_node until interrupted.

    The node configures and activates itself unless ``--no-autostart`` is given (a launch
    file or a lifecycle manager then drives the transitions).
    """
    rclpy.init(args=args)
    argv = remove_ros_args(args if args is not None else sys.argv)[1:]
    node = TraceNode()
    executor = SafeExecutor(num_threads=4)
    executor.add_node(node)
    try:
        if '--no-autostart' not in argv:
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().fatal('could not configure; see the error above')
                raise SystemExit(1)
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        ignore_interrupts()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
