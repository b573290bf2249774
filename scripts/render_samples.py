"""
Render sample RGB, depth, segmentation and task-region PNGs of a few scenes.

Usage: python scripts/render_samples.py [--seeds 0 1 2] [--out out/sim_samples]
Per seed: seed<N>_rgb.png, _depth.png (turbo colour map, black = no depth),
_segmentation.png (one colour per label), _task.png (the task's ground-truth region in
green, its free spot as a cross) and _scene.json (objects, task).
"""

import argparse
import json
import pathlib

from matplotlib import colormaps
import numpy as np
from PIL import Image, ImageDraw
from trace_ros.sim.ground_truth import region_mask
from trace_ros.sim.render import RenderSettings, SceneRenderer
from trace_ros.sim.scene import generate_scene, SceneConfig
from trace_ros.sim.task import make_task


def colour_depth(depth: np.ndarray, near: float = 0.5, far: float = 2.5) -> np.ndarray:
    """Turbo-mapped depth, NaN black."""
    scaled = np.clip((np.nan_to_num(depth, nan=far) - near) / (far - near), 0.0, 1.0)
    rgb = (colormaps['turbo'](scaled)[:, :, :3] * 255).astype(np.uint8)
    rgb[~np.isfinite(depth)] = 0
    return rgb


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """Colour labels with a fixed palette (0, the background, dark grey)."""
    palette = (colormaps['tab20'](np.arange(20))[:, :3] * 255).astype(np.uint8)
    palette[0] = (40, 40, 40)
    return palette[labels % 20]


def main() -> None:
    """Render and save the samples."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--out', default='out/sim_samples')
    parser.add_argument('--no-shadows', action='store_true')
    parser.add_argument('--msaa', type=int, default=4)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        scene = generate_scene(SceneConfig(seed=seed))
        task = make_task(scene)
        model = scene.build()
        data = scene.make_data(model)
        settings = RenderSettings(shadows=not args.no_shadows, msaa=args.msaa)
        with SceneRenderer(scene, model, settings) as renderer:
            frame = renderer.render(data, segmentation=True)
        stem = out / f'seed{seed}'
        Image.fromarray(frame.rgb).save(f'{stem}_rgb.png')
        Image.fromarray(colour_depth(frame.depth)).save(f'{stem}_depth.png')
        Image.fromarray(colour_labels(frame.labels)).save(f'{stem}_segmentation.png')
        mask = region_mask(scene.camera, np.array(task.region), task.region_z, frame.depth)
        overlay = frame.rgb.copy()
        overlay[mask] = (0.5 * overlay[mask] + (0, 110, 0)).astype(np.uint8)
        image = Image.fromarray(overlay)
        uv, _ = scene.camera.project(np.array([task.free_spot]))
        u, v = uv[0]
        draw = ImageDraw.Draw(image)
        draw.line([(u - 6, v - 6), (u + 6, v + 6)], fill=(255, 255, 255), width=2)
        draw.line([(u - 6, v + 6), (u + 6, v - 6)], fill=(255, 255, 255), width=2)
        draw.text((8, 8), task.instruction, fill=(255, 255, 255))
        image.save(f'{stem}_task.png')
        info = {'objects': [{'name': o.name, 'label': o.label, 'category': o.category,
                             'segmentation_label': scene.label_of(o.name),
                             'position': list(o.position), 'yaw': o.yaw}
                            for o in scene.objects],
                'task': json.loads(task.to_json())}
        pathlib.Path(f'{stem}_scene.json').write_text(json.dumps(info, indent=1))
        print(f'seed {seed}: {", ".join(o.label for o in scene.objects)} | {task.instruction}')
    print(f'saved to {out.resolve()}')


if __name__ == '__main__':
    main()
