"""
Headless RGB, metric depth and segmentation renders of a scene's fixed camera.

MuJoCo renders on the CPU here (``MUJOCO_GL=egl`` with Mesa, or ``osmesa``); shadows and
MSAA cost most of the frame time, so both are settings (scripts/bench_render.py measures
them). Depth is z-depth along the optical axis in metres, NaN where nothing was hit. A GL
context belongs to the thread that made it current, so each renderer owns one thread that
creates, uses and frees its context: ``render`` may be called from any thread (an rclpy
multi-threaded executor's timers, for instance).
"""

from concurrent.futures import ThreadPoolExecutor
import dataclasses
from typing import Optional

import mujoco
import numpy as np
from trace_ros.sim import panda
from trace_ros.sim.scene import (FIRST_OBJECT_LABEL, LABEL_BACKGROUND, LABEL_ROBOT,
                                 LABEL_TABLE, Scene)

CAMERA_NAME = 'rgbd'


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """Quality knobs: shadows from the key light and MSAA samples (0 = off)."""

    shadows: bool = True
    msaa: int = 0
    shadow_size: int = 1024


@dataclasses.dataclass
class Frame:
    """One render: HxWx3 uint8 RGB, HxW float32 depth (m), HxW uint8 labels (or None)."""

    rgb: Optional[np.ndarray]
    depth: Optional[np.ndarray]
    labels: Optional[np.ndarray]


def label_lut(scene: Scene, model: mujoco.MjModel) -> np.ndarray:
    """Segmentation label of every geom id (index ngeom holds the no-hit label)."""
    body_label = np.full(model.nbody, LABEL_BACKGROUND, np.uint8)
    for body_id in range(model.nbody):
        if panda.is_robot_body(model, body_id):
            body_label[body_id] = LABEL_ROBOT
    body_label[model.body('table').id] = LABEL_TABLE
    for index, obj in enumerate(scene.objects):
        body_label[model.body(obj.name).id] = FIRST_OBJECT_LABEL + index
    return np.append(body_label[model.geom_bodyid], np.uint8(LABEL_BACKGROUND))


class SceneRenderer:
    """Renders the scene's camera from a model and its (changing) simulation state."""

    _renderer = None

    def __init__(self, scene: Scene, model: mujoco.MjModel,
                 settings: RenderSettings = RenderSettings()):
        cam = scene.config.camera
        if cam.width > model.vis.global_.offwidth or cam.height > model.vis.global_.offheight:
            raise ValueError(f'{cam.width}x{cam.height} exceeds the offscreen buffer '
                             f'{model.vis.global_.offwidth}x{model.vis.global_.offheight}')
        self.scene = scene
        self.model = model
        self.settings = settings
        self.camera = scene.camera
        model.vis.quality.offsamples = int(settings.msaa)
        model.vis.quality.shadowsize = int(settings.shadow_size)
        self._gl_thread = ThreadPoolExecutor(1, thread_name_prefix='mujoco_gl')
        self._renderer = self._gl_thread.submit(mujoco.Renderer, model, cam.height,
                                                cam.width).result()
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = bool(settings.shadows)
        self._lut = label_lut(scene, model)
        self._zfar = model.vis.map.zfar * model.stat.extent

    def render(self, data: mujoco.MjData, rgb: bool = True, depth: bool = True,
               segmentation: bool = False) -> Frame:
        """Render the requested images of ``data``'s current state (from any thread)."""
        return self._gl_thread.submit(self._render, data, rgb, depth, segmentation).result()

    def _render(self, data: mujoco.MjData, rgb: bool, depth: bool, segmentation: bool) -> Frame:
        r = self._renderer
        r.update_scene(data, CAMERA_NAME)
        frame = Frame(None, None, None)
        if rgb:
            frame.rgb = r.render().copy()
        if depth:
            r.enable_depth_rendering()
            z = r.render().astype(np.float32)
            r.disable_depth_rendering()
            z[z >= 0.999 * self._zfar] = np.nan
            frame.depth = z
        if segmentation:
            r.enable_segmentation_rendering()
            ids = r.render()
            r.disable_segmentation_rendering()
            geom = np.where(ids[:, :, 1] == int(mujoco.mjtObj.mjOBJ_GEOM), ids[:, :, 0], -1)
            frame.labels = self._lut[geom]
        return frame

    def close(self) -> None:
        """Free the GL context and its thread (idempotent)."""
        if self._renderer is not None:
            self._gl_thread.submit(self._renderer.close).result()
            self._renderer = None
            self._gl_thread.shutdown()

    def __enter__(self) -> 'SceneRenderer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
