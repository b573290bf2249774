"""
sensor_msgs/Image <-> numpy without cv_bridge (not installable everywhere).

Colour images come out as HxWx3 uint8 RGB; depth images as HxW float32 metres with NaN
where invalid (via trace_ros.core.depth). Row padding (``step``) and byte order are honoured.
"""

import numpy as np
from sensor_msgs.msg import Image
from trace_ros.core.depth import depth_to_metres

_COLOR_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
_DEPTH_DTYPES = {'16UC1': np.uint16, 'mono16': np.uint16, '32FC1': np.float32}


class ImageError(ValueError):
    """The image message cannot be used (encoding, size or data length)."""


def _rows(msg: Image, dtype, channels: int) -> np.ndarray:
    """View the message buffer as an HxWxC array, dropping row padding."""
    itemsize = np.dtype(dtype).itemsize
    row_bytes = msg.width * channels * itemsize
    if msg.height == 0 or msg.width == 0:
        raise ImageError('image is empty (0 x 0)')
    if msg.step < row_bytes:
        raise ImageError(f'step {msg.step} is smaller than width x pixel size ({row_bytes})')
    if len(msg.data) < msg.step * msg.height:
        raise ImageError(f'image data has {len(msg.data)} bytes, expected '
                         f'step x height = {msg.step * msg.height}')
    buffer = np.frombuffer(bytes(msg.data[:msg.step * msg.height]), dtype=np.uint8)
    rows = buffer.reshape(msg.height, msg.step)[:, :row_bytes]
    array = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(
        '>' if msg.is_bigendian else '<'))
    return array.reshape(msg.height, msg.width, channels).astype(dtype, copy=False)


def color_to_rgb(msg: Image) -> np.ndarray:
    """Decode a colour image message into an HxWx3 uint8 RGB array."""
    channels = _COLOR_CHANNELS.get(msg.encoding)
    if channels is None:
        raise ImageError(f"unsupported colour encoding '{msg.encoding}' "
                         f'(supported: {", ".join(_COLOR_CHANNELS)})')
    pixels = _rows(msg, np.uint8, channels)
    if msg.encoding == 'mono8':
        return np.repeat(pixels, 3, axis=2)
    if msg.encoding.startswith('bgr'):
        pixels = pixels[:, :, 2::-1]
    return np.ascontiguousarray(pixels[:, :, :3])


def depth_to_array(msg: Image) -> np.ndarray:
    """Decode a depth image message into HxW float32 metres (NaN = no depth)."""
    dtype = _DEPTH_DTYPES.get(msg.encoding)
    if dtype is None:
        raise ImageError(f"unsupported depth encoding '{msg.encoding}' "
                         '(supported: 16UC1/mono16 millimetres, 32FC1 metres)')
    return depth_to_metres(_rows(msg, dtype, 1)[:, :, 0], msg.encoding)


def rgb_to_msg(rgb: np.ndarray, header=None) -> Image:
    """Encode an HxWx3 uint8 RGB array as an rgb8 image message."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', is_bigendian=0,
                step=rgb.shape[1] * 3)
    if header is not None:
        msg.header = header
    msg.data = rgb.tobytes()
    return msg


def depth_to_msg(depth_m: np.ndarray, encoding: str = '32FC1', header=None) -> Image:
    """Encode metres as 32FC1 (NaN kept) or 16UC1 millimetres (invalid -> 0)."""
    if encoding == '32FC1':
        data = np.ascontiguousarray(depth_m, dtype='<f4')
    elif encoding == '16UC1':
        mm = np.where(np.isfinite(depth_m) & (depth_m > 0), np.round(depth_m * 1000.0), 0)
        data = np.clip(mm, 0, 65535).astype('<u2')
    else:
        raise ImageError(f"unsupported depth encoding '{encoding}' (use 32FC1 or 16UC1)")
    msg = Image(height=data.shape[0], width=data.shape[1], encoding=encoding, is_bigendian=0,
                step=data.shape[1] * data.itemsize)
    if header is not None:
        msg.header = header
    msg.data = data.tobytes()
    return msg
