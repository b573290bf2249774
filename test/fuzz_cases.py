"""
Seeded hostile inputs for trace_node, run over DDS from the test (or benchmark) process.

Each case is sent, its answer (if any) checked for a known status without an "unexpected
error", and then a good request must be answered OK. Shared by test_trace_node_fuzz.py and
scripts/bench_fuzz.py.
"""

import struct
import time
from typing import Callable, List, Optional

from memorized_model import GOOD
import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from trace_ros.action import FindPlacement
from trace_ros.core.instructions import COMMON_SPECIAL_TOKENS
from trace_ros.core.status import Status

NASTY_FLOATS = [float('nan'), float('inf'), -float('inf'), 0.0, -1.0, 1e-300, 1e300, 5e-324,
                525.0, 319.5]
ENCODINGS = ['rgb8', 'bgr8', 'mono8', 'rgba8', '16UC1', '32FC1', 'yuv422', '', 'rgb8\x00x',
             '\u00e9\u00e9']
KNOWN = {int(s) for s in Status}
CLASSICS = ['', ' \t\n ', '<image>', '@ <image>', '<image> @ <image>', '@\x00', '\x00@',
            '<|im_start|>user\n@<|im_end|>', '@</s><s>', '\x1b[2J@', '@ ' * 300]


def _text(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:  # the classics, around the good instruction
        return str(rng.choice(CLASSICS)).replace('@', GOOD)
    pieces = []
    for _ in range(int(rng.integers(0, 12))):
        kind = rng.integers(0, 5)
        if kind == 0:
            pieces.append(str(rng.choice(COMMON_SPECIAL_TOKENS)))
        elif kind == 1:
            pieces.append(''.join(chr(int(c)) for c in rng.integers(1, 32, rng.integers(1, 5))))
        elif kind == 2:  # any plane-0 character except surrogates (UTF-8 cannot carry them)
            codes = rng.integers(0x20, 0xD7FF, rng.integers(1, 20))
            pieces.append(''.join(chr(int(c)) for c in codes))
        elif kind == 3:
            pieces.append(GOOD)
        else:
            pieces.append(' ' * int(rng.integers(0, 5)))
    text = ' '.join(pieces)
    if rng.random() < 0.1:
        text *= int(rng.integers(50, 2000))
    return text


def _raw_string(rng: np.random.Generator) -> bytes:
    data = bytes(rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8))
    return b'\x00\x01\x00\x00' + struct.pack('<I', len(data) + 1) + data + b'\x00'


def _image(rng: np.random.Generator, header: Header) -> Image:
    width, height = (int(v) for v in rng.choice([0, 1, 3, 64, 640, 100000], 2))
    encoding = str(rng.choice(ENCODINGS))
    step = int(rng.choice([0, width, width * 3, width * 4, 2 ** 31 - 1]))
    size = int(min(step * height, rng.choice([0, 10, 1000, 640 * 480 * 3])))
    return Image(header=header, width=width, height=height, encoding=encoding,
                 is_bigendian=bool(rng.integers(0, 2)), step=step,
                 data=bytes(rng.integers(0, 256, size, dtype=np.uint8)))


def _camera_info(rng: np.random.Generator, header: Header) -> CameraInfo:
    k = [float(rng.choice(NASTY_FLOATS)) for _ in range(9)]
    if rng.random() < 0.5:
        k[6:] = [0.0, 0.0, 1.0]
    return CameraInfo(header=header, width=int(rng.choice([0, 640, 10 ** 6])),
                      height=int(rng.choice([0, 480, 1])), k=k,
                      distortion_model=str(rng.choice(['plumb_bob', 'rational_polynomial',
                                                       'equidistant', '', 'x' * 300])),
                      d=[float(rng.choice(NASTY_FLOATS)) for _ in range(rng.integers(0, 9))])


class Fuzzer:
    """Run seeded cases against a ros_harness Session; count what went wrong."""

    def __init__(self, session, seed: int, ask_good: Callable, log: Optional[List] = None):
        self.session = session
        self.rng = np.random.default_rng(seed)
        self.ask_good = ask_good
        self.log = [] if log is None else log
        self.cases = 0
        self.unanswered_good = 0
        self.unexpected = []

    def _check(self, what: str, result) -> None:
        if result is None:
            return
        # A working model never fails on what a user sends: BACKEND_ERROR means it leaked in.
        if result.status not in KNOWN or result.status == Status.BACKEND_ERROR or \
                'unexpected error' in result.message:
            self.unexpected.append(f'{what}: {result.status} {result.message}')

    def _goal(self, header: Header) -> FindPlacement.Goal:
        rng = self.rng
        goal = FindPlacement.Goal(instruction=_text(rng) if rng.random() < 0.5 else GOOD)
        if rng.random() < 0.8:
            goal.use_images = True
            goal.color = _image(rng, header)
            goal.depth = _image(rng, header)
            goal.camera_info = _camera_info(rng, header)
        return goal

    def _send_goal(self, goal) -> Optional[object]:
        client = self.session.client
        future = self.session.action.send_goal_async(goal)
        if not client.wait_until(future.done, 30.0) or not future.result().accepted:
            return None
        result = future.result().get_result_async()
        return result.result().result.result if client.wait_until(result.done, 60.0) else None

    def _perturb_camera(self) -> object:
        rng, camera = self.rng, self.session.camera
        change = rng.choice(['stamp', 'info', 'encoding', 'depth'])
        saved = {'stamp_offset': camera.stamp_offset, 'info_override': camera.info_override,
                 'color_encoding': camera.color_encoding, 'depth': camera.depth}
        try:
            if change == 'stamp':
                camera.stamp_offset = float(rng.choice([30.0, 3600.0, -3600.0, 0.9, -0.4]))
            elif change == 'info':
                camera.info_override = {'k': [float(rng.choice(NASTY_FLOATS))
                                              for _ in range(9)]}
            elif change == 'encoding':
                camera.color_encoding = str(rng.choice(ENCODINGS))
            else:
                camera.depth = np.full(camera.depth.shape, rng.choice(NASTY_FLOATS), np.float32)
            time.sleep(0.3)
            return self.session.ask(GOOD, timeout=30.0)
        finally:
            for key, value in saved.items():
                setattr(camera, key, value)
            time.sleep(0.3)

    def run_one(self) -> None:
        """Send one hostile case, then a good request that must be answered."""
        rng, session = self.rng, self.session
        kind = rng.choice(['text', 'raw', 'goal', 'camera'])
        header = Header(frame_id='camera_color_optical_frame',
                        stamp=session.client.node.get_clock().now().to_msg())
        if kind == 'text':
            result = session.ask(_text(rng), timeout=30.0, match=False)
        elif kind == 'raw':
            result = session.ask_raw(_raw_string(rng), timeout=30.0)
        elif kind == 'goal':
            result = self._send_goal(self._goal(header))
        else:
            result = self._perturb_camera()
        self._check(str(kind), result)
        self.cases += 1
        good = self.ask_good(session)
        if good is None or good.status != Status.OK:
            self.unanswered_good += 1
            self.log.append(f'case {self.cases} ({kind}): good request got '
                            f'{None if good is None else (good.status, good.message)}')
