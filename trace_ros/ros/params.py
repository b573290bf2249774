"""Parameters of the TRACE node: declared with descriptions and ranges, read into a config."""

from dataclasses import dataclass, fields
import json
from typing import List

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter
from trace_ros.core.model_profiles import profile_names


@dataclass
class TraceNodeConfig:
    """Every parameter of trace_node; defaults match config/trace.yaml."""

    backend: str = 'transformers'
    model: str = ''
    device: str = 'cpu'
    dtype: str = 'auto'
    torch_threads: int = 0
    max_new_tokens: int = 800
    generation_timeout: float = 30.0
    generation_options: str = ''
    openai_base_url: str = 'http://localhost:8000/v1'
    openai_model: str = ''
    openai_api_key_env: str = 'OPENAI_API_KEY'
    openai_max_retries: int = 3
    openai_structured_output_field: str = 'vllm'
    prompt_style: str = 'cor'
    structured_decoding: bool = True
    model_profile: str = 'auto'
    target_frame: str = 'base_link'
    static_transform: List[float] = None
    static_transform_parent: str = ''
    static_transform_child: str = ''
    use_tf2: bool = True
    tf_timeout: float = 0.1
    use_message_filters: bool = True
    sync_slop: float = 0.05
    sync_queue_size: int = 5
    max_frame_age: float = 0.5
    frame_wait_timeout: float = 1.0
    instruction_queue_size: int = 4
    max_instruction_chars: int = 1000
    max_instruction_tokens: int = 256
    max_future_stamp: float = 1.0
    action_result_timeout: int = 300
    camera_reliability: str = 'best_effort'
    depth_window: int = 5
    resize_depth_to_color: bool = False
    min_depth: float = 0.1
    max_depth: float = 10.0
    publish_debug_image: bool = True
    publish_attention: bool = False
    refine_placement: bool = True
    num_points: int = 0
    footprint_radius: float = 0.04
    support_tilt_limit: float = 10.0
    obstacle_height: float = 0.01
    support_tolerance: float = 0.004
    min_support_fraction: float = 0.8
    max_support_drop: float = 0.1

    def __post_init__(self):
        if self.static_transform is None:
            self.static_transform = []


_CHOICES = {
    'backend': ('transformers', 'openai'),
    'device': ('cpu', 'cuda', 'auto'),
    'dtype': ('auto', 'float32', 'bfloat16', 'float16'),
    'prompt_style': ('cor', 'plain'),
    'openai_structured_output_field': ('vllm', 'sglang', 'none'),
    'camera_reliability': ('best_effort', 'reliable'),
}

_DESCRIPTIONS = {
    'backend': 'Model backend: "transformers" (in-process) or "openai" (HTTP server).',
    'model': ('transformers: local model directory or hub id; empty or trace-tiny = the '
              'embedded model.'),
    'device': 'transformers: torch device (cpu, cuda, auto).',
    'dtype': 'transformers: weight dtype (auto, float32, bfloat16, float16).',
    'torch_threads': 'transformers: CPU threads for torch (0 = torch default); fewer than '
                     'the cores leaves room for camera callbacks during generation.',
    'max_new_tokens': 'Maximum generated tokens per answer; with structured_decoding at least '
                      "the grammar's longest reply (790 for cor) so that every reply ends.",
    'generation_timeout': 'Seconds before a generation is abandoned (MODEL_TIMEOUT).',
    'generation_options': 'Extra generation settings as a JSON object: transformers '
                          'generate() kwargs (e.g. {"repetition_penalty": 1.1}) or extra '
                          'fields of the OpenAI request body; empty = none.',
    'openai_base_url': 'openai: base URL of an OpenAI-compatible server (vLLM, SGLang).',
    'openai_model': 'openai: served model name.',
    'openai_api_key_env': 'openai: environment variable holding the API key (never logged).',
    'openai_max_retries': 'openai: retries with backoff on connection errors and 5xx/429.',
    'openai_structured_output_field': 'openai: request field carrying the reply grammar: '
                                      '"vllm" (structured_outputs.regex), "sglang" (regex) '
                                      'or "none" (a server without structured outputs).',
    'prompt_style': 'Prompt: "cor" (TRACE chain of reasoning) or "plain" (points only).',
    'structured_decoding': 'Constrain decoding to the reply grammar of prompt_style '
                           '(answer_format.reply_regex): every reply that ends before '
                           'max_new_tokens parses. Only for model profiles that answer in '
                           "TRACE's format (trace, robopoint).",
    'model_profile': 'Model family: its prompts and how its points are written '
                     '(config/model_profiles.yaml, docs/MODELS.md); "auto" detects it from '
                     "the model's config.json or the served model name.",
    'target_frame': 'Frame of the published 3D points and placement goal.',
    'static_transform': 'Static T_parent_child [x, y, z, qx, qy, qz, qw] used when tf2 '
                        'has no transform (or is not installed); empty = none.',
    'static_transform_parent': 'Parent frame of static_transform (usually target_frame).',
    'static_transform_child': 'Child frame of static_transform (the camera optical frame).',
    'use_tf2': 'Look transforms up with tf2_ros when it is installed.',
    'tf_timeout': 'Seconds to wait for a transform at the image stamp.',
    'use_message_filters': 'Match the camera topics with message_filters when it is '
                           "installed; false (or not installed) uses trace_ros's own "
                           'synchronizer with the same semantics.',
    'sync_slop': 'Max stamp difference (s) between colour, depth and CameraInfo.',
    'sync_queue_size': 'Messages kept per input while synchronizing.',
    'max_frame_age': 'Oldest frame (s, by stamp) an instruction may be answered on.',
    'frame_wait_timeout': 'Seconds an instruction waits for a frame newer than itself.',
    'instruction_queue_size': 'Pending instructions kept; more are answered BUSY (action '
                              'goals are rejected).',
    'max_instruction_chars': 'Longest instruction (characters, checked on arrival); longer '
                             'ones are answered BAD_INSTRUCTION.',
    'max_instruction_tokens': 'Longest instruction in model tokens (checked before '
                              'generation; bounds the prompt step): BAD_INSTRUCTION beyond.',
    'max_future_stamp': 'Camera messages stamped more than this (s) ahead of the node clock '
                        'are dropped; instructions get FUTURE_FRAME while only such arrive.',
    'action_result_timeout': 'Seconds the find_placement action keeps a result for clients '
                             'to fetch.',
    'camera_reliability': 'QoS reliability of the camera subscriptions.',
    'depth_window': 'Side (px) of the window whose median valid depth is used per point.',
    'resize_depth_to_color': 'Resize depth (nearest) to the colour size when they differ; '
                             'otherwise a size mismatch is a BAD_IMAGE error.',
    'min_depth': 'Depth values (m) below this are invalid.',
    'max_depth': 'Depth values (m) above this are invalid.',
    'publish_debug_image': 'Publish the annotated debug image.',
    'publish_attention': 'Publish where each reasoning step looked in the image on '
                         'attention_image (transformers backend only; one extra forward pass '
                         'per reply, after its result is published).',
    'refine_placement': 'Judge every answer point against the depth (horizontal support, '
                        'free footprint, not off an edge or on the background) and take the '
                        'goal from the best-supported cluster of valid points; false: the '
                        'median of all points, unchecked.',
    'num_points': 'Points to ask the model for and to keep at most (0: the model chooses).',
    'footprint_radius': "Radius (m) of the held object's footprint that must be supported "
                        'and free of obstacles (the action goal may override it).',
    'support_tilt_limit': 'Steepest support (degrees from horizontal, target_frame z up) '
                          'a point may lie on.',
    'obstacle_height': 'Anything this much (m) above the support within the footprint is '
                       'an obstacle.',
    'support_tolerance': 'Distance (m) from the support plane still on it, at 1 m depth '
                         '(grows with depth squared, as depth noise does).',
    'min_support_fraction': 'Share of the footprint that must be seen on the support.',
    'max_support_drop': "A support this far (m) below the scene's main support is the "
                        'background (IN_AIR); 0 disables the check.',
}

_FLOAT_RANGES = {
    'generation_timeout': (0.1, 3600.0), 'tf_timeout': (0.0, 10.0), 'sync_slop': (0.0, 1.0),
    'max_frame_age': (0.01, 3600.0), 'frame_wait_timeout': (0.0, 60.0),
    'max_future_stamp': (0.0, 3600.0),
    'min_depth': (0.0, 100.0), 'max_depth': (0.01, 1000.0),
    'footprint_radius': (0.005, 1.0), 'support_tilt_limit': (0.0, 90.0),
    'obstacle_height': (0.001, 1.0), 'support_tolerance': (0.0005, 0.1),
    'min_support_fraction': (0.0, 1.0), 'max_support_drop': (0.0, 10.0),
}
_INT_RANGES = {
    'max_new_tokens': (1, 8192), 'torch_threads': (0, 256), 'openai_max_retries': (0, 10),
    'sync_queue_size': (1, 100), 'instruction_queue_size': (1, 1000), 'depth_window': (1, 51),
    'num_points': (0, 16),
    'max_instruction_chars': (1, 100000), 'max_instruction_tokens': (1, 32768),
    'action_result_timeout': (1, 86400),
}


def _descriptor(name: str) -> ParameterDescriptor:
    description = _DESCRIPTIONS[name]
    if name in _CHOICES:
        description += f' One of: {", ".join(_CHOICES[name])}.'
    descriptor = ParameterDescriptor(description=description)
    if name in _FLOAT_RANGES:
        low, high = _FLOAT_RANGES[name]
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high)]
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    return descriptor


def declare_parameters(node) -> None:
    """Declare every TraceNodeConfig field on ``node`` with its descriptor and default."""
    defaults = TraceNodeConfig()
    for field in fields(TraceNodeConfig):
        value = getattr(defaults, field.name)
        if field.name == 'static_transform':
            node.declare_parameter(field.name, Parameter.Type.DOUBLE_ARRAY,
                                   _descriptor(field.name))
            continue
        node.declare_parameter(field.name, value, _descriptor(field.name))


def read_config(node) -> TraceNodeConfig:
    """Read the declared parameters into a validated config (ValueError when invalid)."""
    values = {}
    for field in fields(TraceNodeConfig):
        try:
            value = node.get_parameter(field.name).value
        except ParameterUninitializedException:
            value = None
        if field.name == 'static_transform':
            value = list(value or [])
        values[field.name] = value
    config = TraceNodeConfig(**values)
    for name, choices in _CHOICES.items():
        if getattr(config, name) not in choices:
            raise ValueError(f"parameter {name}='{getattr(config, name)}' is not one of "
                             f'{", ".join(choices)}')
    if config.model_profile not in profile_names():
        raise ValueError(f"parameter model_profile='{config.model_profile}' is not one of "
                         f'{", ".join(profile_names())}')
    if config.min_depth >= config.max_depth:
        raise ValueError('min_depth must be smaller than max_depth')
    if config.generation_options:
        try:
            options = json.loads(config.generation_options)
        except json.JSONDecodeError as exc:
            raise ValueError(f'generation_options is not valid JSON: {exc}') from exc
        if not isinstance(options, dict):
            raise ValueError('generation_options must be a JSON object')
    if config.depth_window % 2 == 0:
        raise ValueError('depth_window must be odd')
    if config.obstacle_height <= config.support_tolerance:
        raise ValueError('obstacle_height must be larger than support_tolerance')
    return config
