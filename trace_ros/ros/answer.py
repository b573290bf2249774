"""
Answering one request on trace_node's worker thread: frame, images, model, 3D, outputs.

Every failure a user can cause is a PlacementError with its status; the node turns it
into a PlacementResult.
"""

from typing import Callable, Dict, Tuple

from rclpy.time import Time
from std_msgs.msg import Header
from trace_ros.backends import BackendCanceled, BackendError, BackendTimeout
from trace_ros.core.annotate import annotate
from trace_ros.core.attention import attention_panel
from trace_ros.core.camera import PinholeCamera
from trace_ros.core.frames import FrameSlot, LatestFrame
from trace_ros.core.instructions import check_tokens
from trace_ros.core.pipeline import locate_placement, prepare_frame
from trace_ros.core.refinement import ground_placement, support_params
from trace_ros.core.status import PlacementError, Status
from trace_ros.msg import PlacementResult
from trace_ros.ros import messages
from trace_ros.ros.camera_sync import stamp_seconds
from trace_ros.ros.images import color_to_rgb, depth_to_array, ImageError, rgb_to_msg
from trace_ros.ros.requests import Request


class Answerer:
    """
    The worker's side of trace_node for one configuration.

    ``future()`` returns (seconds since the camera last sent a frame stamped too far in the
    future, by how much it was ahead).
    """

    def __init__(self, node, config, backend, tf, frames: LatestFrame, outputs: Dict,
                 future: Callable[[], Tuple[float, float]], profile):
        self._node = node
        self._config = config
        self._backend = backend
        self._profile = profile  # the model family's prompts and point convention
        self._tf = tf
        self._frames = frames
        self._outputs = outputs
        self._future = future
        self._attention_warned = False

    def _now(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def _frame_for(self, request: Request) -> FrameSlot:
        config = self._config
        if request.explicit is not None:
            color, depth, info = request.explicit
            slot = FrameSlot(-1, stamp_seconds(color.header), color, depth, info)
        else:
            slot = self._frames.wait_newer(request.arrival_seq, config.frame_wait_timeout)
            slot = slot or self._frames.newest()
        since, ahead = self._future()
        if slot is None or self._now() - slot.stamp > config.max_frame_age:
            if since < max(1.0, config.frame_wait_timeout):
                raise PlacementError(Status.FUTURE_FRAME, self._future_message(ahead))
        if slot is None:
            raise PlacementError(Status.NO_FRAME, 'no synchronized colour + depth + CameraInfo '
                                 'frame received yet (check the topics and that their stamps '
                                 'agree within sync_slop)')
        age = self._now() - slot.stamp
        if -age > config.max_future_stamp:
            raise PlacementError(Status.FUTURE_FRAME, self._future_message(-age))
        if age > config.max_frame_age:
            raise PlacementError(Status.STALE_FRAME,
                                 f'newest frame is {age:.2f} s old (max_frame_age '
                                 f'{config.max_frame_age} s): is the camera running?')
        return slot

    def _future_message(self, ahead: float) -> str:
        return (f'camera frames are stamped {ahead:.3g} s in the future (max_future_stamp '
                f'{self._config.max_future_stamp} s): are the camera and this node on the same '
                'clock?')

    def answer(self, request: Request) -> PlacementResult:
        """Answer ``request``; raise PlacementError with the reason it cannot be."""
        config = self._config
        if request.cancel.is_set():
            raise PlacementError(Status.CANCELED, 'canceled before it was answered')
        check_tokens(self._backend.count_tokens(request.instruction),
                     config.max_instruction_tokens)
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
            self._node.log_throttled(Status.NO_VALID_PLACEMENT,
                                     f'NO_VALID_PLACEMENT: {result.message}')
        self._publish_extras(request, result, placement, rgb)
        return result

    def _publish_extras(self, request, result, placement, rgb) -> None:
        target_header = Header(stamp=result.header.stamp, frame_id=self._config.target_frame)
        if result.status == Status.OK:
            self._outputs['goal'].publish(result.goal)
        self._outputs['points'].publish(messages.points_pose_array(placement, target_header))
        self._outputs['markers'].publish(
            messages.markers(placement, target_header, result.reasoning))
        if self._config.publish_debug_image:
            image = annotate(rgb, placement.pixels, valid=placement.grounding.valid,
                             goal_pixel=placement.goal_pixel,
                             text=f'{request.instruction}\n{result.reasoning}')
            self._outputs['debug'].publish(rgb_to_msg(image, result.header))

    def publish_attention(self, request: Request) -> None:
        """Publish where each reasoning step looked (optional; the answer is already out)."""
        rgb, prompt = request.attention_inputs
        try:
            maps = self._backend.attention_maps(rgb, prompt, text=request.text).maps
        except Exception as exc:  # optional output: the answer is already out
            if not self._attention_warned:
                self._attention_warned = True
                self._node.get_logger().warning(f'publish_attention: no attention image '
                                                f'({exc}); answers go on without it')
            return
        if maps:  # an empty reply has none
            self._outputs['attention'].publish(rgb_to_msg(attention_panel(rgb, maps),
                                                          request.header))
