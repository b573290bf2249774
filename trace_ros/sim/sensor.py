"""
Camera sensor effects on a rendered RGB image: exposure, gamma, blur, noise, JPEG.

They change only the colour image, never depth, labels or ground truth, and are seeded:
the same settings and seed give the same pixels. numpy and PIL only.
"""

import dataclasses
import io
from typing import Dict

import numpy as np
from PIL import Image, ImageFilter


@dataclasses.dataclass(frozen=True)
class SensorConfig:
    """Effects applied in this order; the defaults change nothing."""

    exposure: float = 1.0  # gain on linear intensity
    gamma: float = 1.0  # output = input ** gamma (after the gain)
    blur_sigma: float = 0.0  # Gaussian blur radius in pixels
    noise_std: float = 0.0  # Gaussian noise, in 8-bit levels
    jpeg_quality: int = 0  # JPEG round trip at this quality; 0 = none

    def to_dict(self) -> Dict:
        """Plain-data form (JSON-serializable)."""
        return dataclasses.asdict(self)

    @property
    def is_identity(self) -> bool:
        """Tell whether the settings leave an image unchanged."""
        return self == SensorConfig()


def apply_sensor(rgb: np.ndarray, sensor: SensorConfig, seed: int = 0) -> np.ndarray:
    """Return a new HxWx3 uint8 image with the sensor's effects (``seed`` draws the noise)."""
    if sensor.is_identity:
        return rgb.copy()
    image = rgb.astype(np.float32) / 255.0
    if sensor.exposure != 1.0 or sensor.gamma != 1.0:
        image = np.clip(image * sensor.exposure, 0.0, 1.0) ** sensor.gamma
    out = Image.fromarray(np.round(image * 255).astype(np.uint8))
    if sensor.blur_sigma > 0:
        out = out.filter(ImageFilter.GaussianBlur(radius=sensor.blur_sigma))
    array = np.asarray(out, np.float32)
    if sensor.noise_std > 0:
        noise = np.random.default_rng([seed, 0x5E]).normal(0.0, sensor.noise_std, array.shape)
        array = array + noise
    out = Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))
    if sensor.jpeg_quality:
        buffer = io.BytesIO()
        out.save(buffer, 'JPEG', quality=int(sensor.jpeg_quality))
        buffer.seek(0)
        out = Image.open(buffer).convert('RGB')
    return np.asarray(out).copy()
