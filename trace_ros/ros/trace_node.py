"""
trace_node: RGB-D + instruction in, reasoning + 3D placement goals out.

A lifecycle node. configure loads the model and creates the publishers and the
FindPlacement action; activate subscribes to the camera and instruction topics and
starts the worker that runs the model off the executor threads; cleanup frees the model.
"""

import dataclasses
import json
import queue
import sys
import threading
import time
from typing import Callable, Optional

from geometry_msgs.msg import PoseArray, PoseStamped
import numpy as np
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.time import Time
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from trace_ros.action import FindPlacement
from trace_ros.backends import BackendCanceled, BackendError, BackendTimeout, make_backend
from trace_ros.core.annotate import annotate
from trace_ros.core.answer_format import reply_regex
from trace_ros.core.attention import attention_panel
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.frames import FrameSlot, LatestFrame
from trace_ros.core.model_profiles import resolve_profile
from trace_ros.core.pipeline import locate_placement, prepare_frame
from trace_ros.core.refinement import ground_placement, support_params
from trace_ros.core.status import PlacementError, Status
from trace_ros.models import default_model_dir
from trace_ros.msg import PlacementResult
from trace_ros.ros import messages
from trace_ros.ros.camera_sync import CameraSync, stamp_seconds
from trace_ros.ros.images import color_to_rgb, depth_to_array, ImageError, rgb_to_msg
from trace_ros.ros.params import declare_parameters, read_config, TraceNodeConfig
from trace_ros.ros.spin import ignore_interrupts
from trace_ros.ros.tf_source import static_transform_from_list, TransformSource
from visualization_msgs.msg import MarkerArray

LOG_THROTTLE_S = 5.0


@dataclasses.dataclass
class Request:
    """One instruction waiting for (or being answered by) the worker."""

    instruction: str
    arrival_seq: int
    arrival: float
    explicit: Optional[tuple] = None
    on_text: Optional[Callable[[str], None]] = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    header: Optional[Header] = None
    text: str = ''
    result: Optional[PlacementResult] = None
    attention_inputs: Optional[tuple] = None
    num_points: int = 0  # 0: the num_points parameter
    footprint_radius: float = 0.0  # 0: the footprint_radius parameter


class TraceNode(LifecycleNode):
    """The TRACE placement node."""

    def __init__(self, **kwargs):
        super().__init__('trace_node', **kwargs)
        declare_parameters(self)
        self.config: Optional[TraceNodeConfig] = None
        self._backend = None
        self._profile = None
        self._frames = LatestFrame()
        self._requests: Optional[queue.Queue] = None
        self._worker: Optional[threading.Thread] = None
        self._camera: Optional[CameraSync] = None
        self._instruction_sub = None
        self._outputs = {}
        self._action = None
        self._last_log = {}
        self._attention_warned = False
        self._camera_group = MutuallyExclusiveCallbackGroup()
        self._request_group = ReentrantCallbackGroup()

    # -- lifecycle ---------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        self._attention_warned = False
        try:
            self.config = config = read_config(self)
            static = static_transform_from_list(config.static_transform)
            self._profile, why = self._resolve_profile(config)
            self._backend = make_backend(**self._backend_params(config, self._profile))
        except Exception as exc:  # bad parameters or a model that does not load
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self._tf = TransformSource(self, config.static_transform_parent,
                                   config.static_transform_child, static, config.use_tf2)
        self._outputs = {
            'result': self.create_publisher(PlacementResult, 'placement_result', 10),
            'goal': self.create_publisher(PoseStamped, 'placement_goal', 10),
            'points': self.create_publisher(PoseArray, 'placement_points', 10),
            'reasoning': self.create_publisher(String, 'reasoning', 10),
            'markers': self.create_publisher(MarkerArray, 'placement_markers', 10),
            'debug': self.create_publisher(Image, 'debug_image', 1),
        }
        if config.publish_attention:
            self._outputs['attention'] = self.create_publisher(Image, 'attention_image', 1)
        self._action = ActionServer(self, FindPlacement, 'find_placement',
                                    execute_callback=self._execute_action,
                                    goal_callback=lambda _: GoalResponse.ACCEPT,
                                    cancel_callback=lambda _: CancelResponse.ACCEPT,
                                    callback_group=self._request_group)
        self.get_logger().info(f'configured: model {self._backend.model_id} '
                               f'({config.backend}), profile {self._profile.name} ({why}), '
                               f'transforms from {self._tf.backend}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        config = self.config
        self._requests = queue.Queue(maxsize=config.instruction_queue_size)
        self._worker = threading.Thread(target=self._work, name='trace_worker', daemon=True)
        self._worker.start()
        self._camera = CameraSync(self, self._on_frame, slop=config.sync_slop,
                                  queue_size=config.sync_queue_size,
                                  reliability=config.camera_reliability,
                                  use_message_filters=config.use_message_filters,
                                  callback_group=self._camera_group)
        self._instruction_sub = self.create_subscription(
            String, 'instruction', self._on_instruction, 10,
            callback_group=self._request_group)
        self.get_logger().info(f'active: camera sync by {self._camera.implementation}')
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_inputs()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_inputs(self) -> None:
        if self._camera is not None:
            self._camera.destroy()
            self._camera = None
        if self._instruction_sub is not None:
            self.destroy_subscription(self._instruction_sub)
            self._instruction_sub = None
        if self._worker is not None:
            requests, self._requests = self._requests, None  # new requests: 'not active'
            requests.put(None)
            self._worker.join(timeout=self.config.generation_timeout + 5.0)
            self._worker = None

    def _release(self) -> None:
        if self._action is not None:
            self._action.destroy()
            self._action = None
        for publisher in self._outputs.values():
            self.destroy_publisher(publisher)
        self._outputs = {}
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    @staticmethod
    def _resolve_profile(config: TraceNodeConfig):
        """Return (model profile, why) for the configured model (docs/MODELS.md)."""
        if config.backend == 'openai':
            return resolve_profile(config.model_profile, model_name=config.openai_model)
        return resolve_profile(config.model_profile, config.model or default_model_dir())

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
        return {'kind': 'transformers', 'model': config.model or default_model_dir(),
                'device': config.device, 'dtype': config.dtype,
                'max_new_tokens': config.max_new_tokens, 'generation_kwargs': options,
                'num_threads': config.torch_threads, 'reply_regex': regex,
                'trust_remote_code': bool(profile and profile.setting('trust_remote_code'))}

    # -- inputs ------------------------------------------------------------------------------
    def _on_frame(self, color, depth, info) -> None:
        self._frames.put(stamp_seconds(color.header), color, depth, info)

    def _submit(self, request: Request) -> bool:
        requests = self._requests
        if requests is None:
            self._finish(request, self._failure(request, None, Status.BUSY,
                                                'trace_node is not active'))
            return False
        try:
            requests.put_nowait(request)
            return True
        except queue.Full:
            self._finish(request, self._failure(
                request, None, Status.BUSY,
                f'{self.config.instruction_queue_size} instructions are already queued'))
            return False

    def _new_request(self, instruction: str, **kwargs) -> Request:
        return Request(instruction, self._frames.seq, time.monotonic(), **kwargs)

    def _on_instruction(self, msg: String) -> None:
        self._submit(self._new_request(msg.data))

    def _execute_action(self, goal_handle):
        goal = goal_handle.request
        explicit = (goal.color, goal.depth, goal.camera_info) if goal.use_images else None
        text = []

        def feedback(delta: str) -> None:
            text.append(delta)
            goal_handle.publish_feedback(FindPlacement.Feedback(
                text_delta=delta, text=''.join(text), num_tokens=len(text)))

        request = self._new_request(goal.instruction, explicit=explicit, on_text=feedback,
                                    num_points=goal.num_points,
                                    footprint_radius=goal.footprint_radius)
        if not self._submit(request):
            goal_handle.abort()
            return FindPlacement.Result(result=request.result)
        while not request.done.wait(0.05):
            if goal_handle.is_cancel_requested:
                request.cancel.set()
        if request.result.status == Status.CANCELED:
            goal_handle.canceled()
        elif request.result.status == Status.OK:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return FindPlacement.Result(result=request.result)

    # -- the worker --------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            try:
                result = self._answer(request)
            except PlacementError as err:
                result = self._failure(request, request.header, err.status, err.message)
            except Exception as exc:  # never let the worker die on one request
                result = self._failure(request, request.header, Status.BACKEND_ERROR,
                                       f'unexpected error: {exc!r}')
            self._finish(request, result)
            if request.attention_inputs is not None:
                self._publish_attention(request)

    def _frame_for(self, request: Request) -> FrameSlot:
        if request.explicit is not None:
            color, depth, info = request.explicit
            return FrameSlot(-1, stamp_seconds(color.header), color, depth, info)
        slot = self._frames.wait_newer(request.arrival_seq, self.config.frame_wait_timeout)
        if slot is None:
            newest = self._frames.newest()
            if newest is None:
                raise PlacementError(Status.NO_FRAME, 'no synchronized colour + depth + '
                                     'CameraInfo frame received yet (check the topics and '
                                     'that their stamps agree within sync_slop)')
            slot = newest
        age = self.get_clock().now().nanoseconds * 1e-9 - slot.stamp
        if age > self.config.max_frame_age:
            raise PlacementError(Status.STALE_FRAME,
                                 f'newest frame is {age:.2f} s old (max_frame_age '
                                 f'{self.config.max_frame_age} s): is the camera running?')
        return slot

    def _answer(self, request: Request) -> PlacementResult:
        config = self.config
        slot = self._frame_for(request)
        request.header = Header(stamp=slot.color.header.stamp,
                                frame_id=slot.color.header.frame_id)
        try:
            rgb = color_to_rgb(slot.color)
            depth = depth_to_array(slot.depth)
        except (ImageError, ValueError) as exc:
            raise PlacementError(Status.BAD_IMAGE, str(exc)) from exc
        info = slot.camera_info
        try:
            camera = PinholeCamera.from_camera_info(info.width, info.height, info.k, info.d,
                                                    info.distortion_model)
        except ValueError as exc:
            raise PlacementError(Status.NO_CAMERA_INFO, f'unusable CameraInfo: {exc}') from exc
        frame = prepare_frame(rgb, depth, camera, request.header.frame_id,
                              resize_depth=config.resize_depth_to_color,
                              min_depth=config.min_depth, max_depth=config.max_depth)
        target_from_camera = self._tf.lookup(config.target_frame, frame.frame_id,
                                             Time.from_msg(request.header.stamp),
                                             config.tf_timeout)
        num_points = request.num_points or config.num_points
        prompt = self._profile.build_prompt(request.instruction, style=config.prompt_style,
                                            num_points=num_points)
        try:
            generation = self._backend.generate(rgb, prompt, on_text=request.on_text,
                                                cancel=request.cancel,
                                                timeout_s=config.generation_timeout)
        except (BackendTimeout, BackendCanceled) as exc:
            request.text = exc.partial.text if exc.partial else ''
            status = Status.MODEL_TIMEOUT if isinstance(exc, BackendTimeout) else Status.CANCELED
            raise PlacementError(status, str(exc)) from exc
        except BackendError as exc:
            raise PlacementError(Status.BACKEND_ERROR, str(exc)) from exc
        except ValueError as exc:
            raise PlacementError(Status.BAD_IMAGE, str(exc)) from exc
        request.text = generation.text
        if generation.finish_reason == 'canceled':
            raise PlacementError(Status.CANCELED, 'canceled by the client')
        if config.publish_attention:
            request.attention_inputs = (rgb, prompt)
        result = messages.empty_result(request.header, request.instruction,
                                       self._backend.model_id, Status.OK, '',
                                       config.target_frame)
        result.reasoning = generation.text
        result.inference_time = messages.duration(generation.inference_s)
        parsed = self._profile.parse(generation.text, (frame.camera.width, frame.camera.height))
        placement = locate_placement(frame, generation.text, target_from_camera,
                                     depth_window=config.depth_window, parsed=parsed,
                                     max_points=num_points)
        placement = ground_placement(frame, placement, target_from_camera,
                                     support_params(config, request.footprint_radius),
                                     generation.text, generation.token_logprobs)
        messages.fill_placement(result, placement, config.target_frame)
        if not placement.grounding.ok:
            result.status, result.message = Status.NO_VALID_PLACEMENT, placement.grounding.message
            self._log_throttled(Status.NO_VALID_PLACEMENT, f'NO_VALID_PLACEMENT: {result.message}')
        self._publish_extras(request, result, placement, rgb)
        return result

    # -- outputs -----------------------------------------------------------------------------
    def _failure(self, request: Request, header: Optional[Header], status: Status,
                 message: str) -> PlacementResult:
        self._log_throttled(status, f'{status.name}: {message}')
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
        if 'result' in self._outputs:
            self._outputs['result'].publish(result)
            self._outputs['reasoning'].publish(String(data=result.reasoning))
        request.done.set()

    def _publish_extras(self, request, result, placement, rgb) -> None:
        target_header = Header(stamp=result.header.stamp, frame_id=self.config.target_frame)
        if result.status == Status.OK:
            self._outputs['goal'].publish(result.goal)
        self._outputs['points'].publish(messages.points_pose_array(placement, target_header))
        self._outputs['markers'].publish(
            messages.markers(placement, target_header, result.reasoning))
        if self.config.publish_debug_image:
            image = annotate(rgb, placement.pixels, valid=placement.grounding.valid,
                             goal_pixel=placement.goal_pixel,
                             text=f'{request.instruction}\n{result.reasoning}')
            self._outputs['debug'].publish(rgb_to_msg(image, result.header))

    def _publish_attention(self, request: Request) -> None:
        rgb, prompt = request.attention_inputs
        try:
            maps = self._backend.attention_maps(rgb, prompt, text=request.text).maps
        except Exception as exc:  # optional output: the answer is already out
            if not self._attention_warned:
                self._attention_warned = True
                self.get_logger().warning(f'publish_attention: no attention image ({exc}); '
                                          'answers go on without it')
            return
        if maps:  # an empty reply has none
            self._outputs['attention'].publish(rgb_to_msg(attention_panel(rgb, maps),
                                                          request.header))

    def _log_throttled(self, status: Status, text: str) -> None:
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
    executor = MultiThreadedExecutor(num_threads=4)
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
