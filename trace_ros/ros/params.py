"""Parameters of trace_node: one TraceNodeConfig field per parameter (see parameters.py)."""

from dataclasses import dataclass
import json
from typing import List

from trace_ros.core.model_profiles import profile_names
from trace_ros.ros.parameters import param


@dataclass
class TraceNodeConfig:
    """Every parameter of trace_node; defaults match config/trace.yaml."""

    backend: str = param('transformers', 'Model backend: "transformers" (in-process) or '
                         '"openai" (HTTP server).', choices=('transformers', 'openai'))
    model: str = param('', 'transformers: local model directory or hub id; empty or '
                       'trace-tiny = the embedded model.')
    device: str = param('cpu', 'transformers: torch device (cpu, cuda, auto).',
                        choices=('cpu', 'cuda', 'auto'))
    dtype: str = param('auto', 'transformers: weight dtype (auto, float32, bfloat16, float16).',
                       choices=('auto', 'float32', 'bfloat16', 'float16'))
    torch_threads: int = param(0, 'transformers: CPU threads for torch (0 = torch default); '
                               'fewer than the cores leaves room for camera callbacks during '
                               'generation.', range=(0, 256))
    max_new_tokens: int = param(800, 'Maximum generated tokens per answer; with '
                                "structured_decoding at least the grammar's longest reply "
                                '(790 for cor) so that every reply ends.', range=(1, 8192))
    generation_timeout: float = param(30.0, 'Seconds before a generation is abandoned '
                                      '(MODEL_TIMEOUT).', range=(0.1, 3600.0))
    generation_options: str = param('', 'Extra generation settings as a JSON object: '
                                    'transformers generate() kwargs (e.g. '
                                    '{"repetition_penalty": 1.1}) or extra fields of the '
                                    'OpenAI request body; empty = none.')
    openai_base_url: str = param('http://localhost:8000/v1', 'openai: base URL of an '
                                 'OpenAI-compatible server (vLLM, SGLang).')
    openai_model: str = param('', 'openai: served model name; empty = the first one the '
                              'server lists.')
    openai_api_key_env: str = param('OPENAI_API_KEY', 'openai: environment variable holding '
                                    'the API key (never logged).')
    openai_max_retries: int = param(3, 'openai: retries with backoff on connection errors and '
                                    '5xx/429.', range=(0, 10))
    openai_structured_output_field: str = param(
        'vllm', 'openai: request field carrying the reply grammar: "vllm" '
        '(structured_outputs.regex), "sglang" (regex) or "none" (a server without structured '
        'outputs).', choices=('vllm', 'sglang', 'none'))
    prompt_style: str = param('cor', 'Prompt: "cor" (TRACE chain of reasoning) or "plain" '
                              '(points only).', choices=('cor', 'plain'))
    structured_decoding: bool = param(True, 'Constrain decoding to the reply grammar of '
                                      'prompt_style (answer_format.reply_regex): every reply '
                                      'that ends before max_new_tokens parses. Only for model '
                                      "profiles that answer in TRACE's format (trace, "
                                      'robopoint).')
    model_profile: str = param('auto', 'Model family: its prompts and how its points are '
                               'written (config/model_profiles.yaml, docs/MODELS.md); "auto" '
                               "detects it from the model's config.json or the served model "
                               'name.')
    target_frame: str = param('base_link', 'Frame of the published 3D points and placement '
                              'goal.')
    static_transform: List[float] = param([], 'Static T_parent_child [x, y, z, qx, qy, qz, '
                                          'qw] used when tf2 has no transform (or is not '
                                          'installed); empty = none.')
    static_transform_parent: str = param('', 'Parent frame of static_transform (usually '
                                         'target_frame).')
    static_transform_child: str = param('', 'Child frame of static_transform (the camera '
                                        'optical frame).')
    use_tf2: bool = param(True, 'Look transforms up with tf2_ros when it is installed.')
    tf_timeout: float = param(0.1, 'Seconds to wait for a transform at the image stamp.',
                              range=(0.0, 10.0))
    use_message_filters: bool = param(True, 'Match the camera topics with message_filters '
                                      'when it is installed; false (or not installed) uses '
                                      "trace_ros's own synchronizer with the same semantics.")
    sync_slop: float = param(0.05, 'Max stamp difference (s) between colour, depth and '
                             'CameraInfo.', range=(0.0, 1.0))
    sync_queue_size: int = param(5, 'Messages kept per input while synchronizing.',
                                 range=(1, 100))
    max_frame_age: float = param(0.5, 'Oldest frame (s, by stamp) an instruction may be '
                                 'answered on.', range=(0.01, 3600.0))
    frame_wait_timeout: float = param(1.0, 'Seconds an instruction waits for a frame newer '
                                      'than itself.', range=(0.0, 60.0))
    instruction_queue_size: int = param(4, 'Pending instructions kept; more are answered BUSY '
                                        '(action goals are rejected).', range=(1, 1000))
    max_instruction_chars: int = param(1000, 'Longest instruction (characters, checked on '
                                       'arrival); longer ones are answered BAD_INSTRUCTION.',
                                       range=(1, 100000))
    max_instruction_tokens: int = param(256, 'Longest instruction in model tokens (checked '
                                        'before generation; bounds the prompt step): '
                                        'BAD_INSTRUCTION beyond.', range=(1, 32768))
    max_future_stamp: float = param(1.0, 'Camera messages stamped more than this (s) ahead of '
                                    'the node clock are dropped; instructions get '
                                    'FUTURE_FRAME while only such arrive.',
                                    range=(0.0, 3600.0))
    action_result_timeout: int = param(300, 'Seconds the find_placement action keeps a result '
                                       'for clients to fetch.', range=(1, 86400))
    camera_reliability: str = param('best_effort', 'QoS reliability of the camera '
                                    'subscriptions.', choices=('best_effort', 'reliable'))
    depth_window: int = param(5, 'Side (px) of the window whose median valid depth is used '
                              'per point.', range=(1, 51))
    resize_depth_to_color: bool = param(False, 'Resize depth (nearest) to the colour size when '
                                        'they differ; otherwise a size mismatch is a '
                                        'BAD_IMAGE error.')
    min_depth: float = param(0.1, 'Depth values (m) below this are invalid.',
                             range=(0.0, 100.0))
    max_depth: float = param(10.0, 'Depth values (m) above this are invalid.',
                             range=(0.01, 1000.0))
    publish_debug_image: bool = param(True, 'Publish the annotated debug image.')
    publish_attention: bool = param(False, 'Publish where each reasoning step looked in the '
                                    'image on attention_image (transformers backend only; one '
                                    'extra forward pass per reply, after its result is '
                                    'published).')
    refine_placement: bool = param(True, 'Judge every answer point against the depth '
                                   '(horizontal support, free footprint, not off an edge or '
                                   'on the background) and take the goal from the '
                                   'best-supported cluster of valid points; false: the median '
                                   'of all points, unchecked.')
    num_points: int = param(0, 'Points to ask the model for and to keep at most (0: the model '
                            'chooses).', range=(0, 16))
    footprint_radius: float = param(0.04, "Radius (m) of the held object's footprint that must "
                                    'be supported and free of obstacles (the action goal may '
                                    'override it).', range=(0.005, 1.0))
    support_tilt_limit: float = param(10.0, 'Steepest support (degrees from horizontal, '
                                      'target_frame z up) a point may lie on.',
                                      range=(0.0, 90.0))
    obstacle_height: float = param(0.01, 'Anything this much (m) above the support within the '
                                   'footprint is an obstacle.', range=(0.001, 1.0))
    support_tolerance: float = param(0.004, 'Distance (m) from the support plane still on it, '
                                     'at 1 m depth (grows with depth squared, as depth noise '
                                     'does).', range=(0.0005, 0.1))
    min_support_fraction: float = param(0.8, 'Share of the footprint that must be seen on the '
                                        'support.', range=(0.0, 1.0))
    max_support_drop: float = param(0.1, "A support this far (m) below the scene's main "
                                    'support is the background (IN_AIR); 0 disables the '
                                    'check.', range=(0.0, 10.0))

    def validate(self) -> None:
        """Check what one parameter's choices and range cannot (ValueError when invalid)."""
        if self.model_profile not in profile_names():
            raise ValueError(f"parameter model_profile='{self.model_profile}' is not one of "
                             f'{", ".join(profile_names())}')
        if self.min_depth >= self.max_depth:
            raise ValueError('min_depth must be smaller than max_depth')
        if self.generation_options:
            try:
                options = json.loads(self.generation_options)
            except json.JSONDecodeError as exc:
                raise ValueError(f'generation_options is not valid JSON: {exc}') from exc
            if not isinstance(options, dict):
                raise ValueError('generation_options must be a JSON object')
        if self.depth_window % 2 == 0:
            raise ValueError('depth_window must be odd')
        if self.obstacle_height <= self.support_tolerance:
            raise ValueError('obstacle_height must be larger than support_tolerance')
