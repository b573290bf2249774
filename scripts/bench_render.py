"""
Rendering rate of the simulated RGB-D camera (RGB + depth per frame), per quality setting.

Usage: python scripts/bench_render.py [--width 640 --height 480 --frames 30 --seed 0]
Needs MUJOCO_GL=egl (or osmesa) for headless rendering; scripts/env.sh exports it.
"""

import argparse
import itertools
import time

from trace_ros.sim.render import RenderSettings, SceneRenderer
from trace_ros.sim.scene import CameraConfig, generate_scene, SceneConfig


def measure(scene, settings: RenderSettings, frames: int, segmentation: bool = False) -> float:
    """Frames per second of RGB + depth (+ segmentation) renders."""
    model = scene.build()
    data = scene.make_data(model)
    with SceneRenderer(scene, model, settings) as renderer:
        renderer.render(data, segmentation=segmentation)  # warm-up
        start = time.perf_counter()
        for _ in range(frames):
            renderer.render(data, segmentation=segmentation)
        return frames / (time.perf_counter() - start)


def main() -> None:
    """Print the rate for shadows on/off x MSAA on/off."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--msaa', type=int, default=4, help='samples for the "MSAA on" rows')
    args = parser.parse_args()
    scene = generate_scene(SceneConfig(args.seed, camera=CameraConfig(args.width, args.height)))
    default = RenderSettings()
    print(f'{args.width}x{args.height} RGB+depth, seed {args.seed} '
          f'({len(scene.objects)} objects + Panda), {args.frames} frames each')
    print(f'{"shadows":>8} {"msaa":>5} {"fps":>7}')
    for shadows, msaa in itertools.product((True, False), (args.msaa, 0)):
        settings = RenderSettings(shadows=shadows, msaa=msaa)
        fps = measure(scene, settings, args.frames)
        mark = '  <- default' if (shadows, msaa) == (default.shadows, default.msaa) else ''
        print(f'{str(shadows):>8} {msaa:>5} {fps:7.1f}{mark}')
    fps = measure(scene, default, args.frames, segmentation=True)
    print(f'default + segmentation: {fps:.1f} fps')


if __name__ == '__main__':
    main()
