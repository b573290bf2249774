"""
Render sim tabletop images with per-pixel object ids for grounding pretraining.

Building a scene (MJCF compile with the Panda) costs ~0.4 s on these CPUs and a 224x168
render ~0.1 s, so every built scene is rendered at several random re-layouts of its objects
(upright, random yaw, footprint circles apart) to get more images per compile. Output: one
``.npz`` with ``rgb`` (N, H, W, 3) uint8, ``labels`` (N, H, W) uint8 (0 background, 1 table,
2 robot, 3 + i object i), ``category`` and ``colour`` (N, MAX_OBJECTS) int8 indices into
``CATEGORIES``/``data.COLOUR_NAMES`` (-1 = no object) and ``scene_seed`` (N,); with
``--blank`` also ``blank_rgb``: the same view with every object removed
(for real-vs-blank probes).

``--from-dataset`` converts instead the randomized worlds of ``trace_train.data.generate
--dense`` (any camera, light, table and sensor; mixed image sizes) into the same arrays,
every image resized to a square ``--size`` as the LLaVA processor does.
"""

import argparse
import json
import math
import pathlib

from experiments.grounding.data import COLOUR_NAMES, FIRST_OBJECT, resize_labels, resize_rgb
import numpy as np
from PIL import Image
from tqdm import tqdm
from trace_ros.sim.ground_truth import apply_poses, ObjectPose
from trace_ros.sim.objects import CATEGORIES
from trace_ros.sim.randomization import WorldRandomization
from trace_ros.sim.render import RenderSettings, SceneRenderer
from trace_ros.sim.scene import (CameraConfig, GAP, generate_scene, MAX_OBJECTS, ROBOT_BASE,
                                 SceneConfig, WORKSPACE)

REACH = (0.28, 0.80)


def random_layout(scene, rng: np.random.Generator, tries: int = 200):
    """Return new non-overlapping poses for the scene's objects, or None if none was found."""
    placed, poses = [], {}
    for obj in scene.objects:
        radius = obj.shape.radius
        for _ in range(tries):
            x = rng.uniform(WORKSPACE[0][0], WORKSPACE[0][1])
            y = rng.uniform(WORKSPACE[1][0], WORKSPACE[1][1])
            reach = math.hypot(x - ROBOT_BASE[0], y - ROBOT_BASE[1])
            if not REACH[0] <= reach <= REACH[1]:
                continue
            if all(math.hypot(x - px, y - py) >= radius + pr + GAP for px, py, pr in placed):
                break
        else:
            return None
        placed.append((x, y, radius))
        yaw = rng.uniform(-math.pi, math.pi)
        quat = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))
        poses[obj.name] = ObjectPose((x, y, obj.position[2]), quat)
    return poses


def render_dataset(first_seed: int, scenes: int, layouts: int, width: int, height: int,
                   blank: bool = False):
    """Render ``scenes`` scenes from ``first_seed`` at ``layouts`` layouts each."""
    out = {'rgb': [], 'labels': [], 'category': [], 'colour': [], 'scene_seed': []}
    if blank:
        out['blank_rgb'] = []
    camera = CameraConfig(width=width, height=height)
    for seed in tqdm(range(first_seed, first_seed + scenes), desc='render', unit='scene'):
        scene = generate_scene(SceneConfig(seed=seed, camera=camera))
        model = scene.build()
        data = scene.make_data(model)
        renderer = SceneRenderer(scene, model, RenderSettings(shadows=True))
        rng = np.random.default_rng(seed)
        category = np.full(MAX_OBJECTS, -1, np.int8)
        colour = np.full(MAX_OBJECTS, -1, np.int8)
        for i, obj in enumerate(scene.objects):
            category[i] = CATEGORIES.index(obj.category)
            colour[i] = COLOUR_NAMES.index(obj.colour)
        for layout in range(layouts):
            if layout:
                poses = random_layout(scene, rng)
                if poses is None:
                    continue
                apply_poses(model, data, poses)
            frame = renderer.render(data, rgb=True, depth=False, segmentation=True)
            out['rgb'].append(frame.rgb)
            out['labels'].append(frame.labels)
            out['category'].append(category)
            out['colour'].append(colour)
            out['scene_seed'].append(seed)
            if blank:
                away = {o.name: ObjectPose((5.0 + i, 5.0, 0.1), (0.0, 0.0, 0.0, 1.0))
                        for i, o in enumerate(scene.objects)}
                saved = data.qpos.copy()
                apply_poses(model, data, away)
                out['blank_rgb'].append(renderer.render(data, depth=False).rgb)
                data.qpos[:] = saved
                apply_poses(model, data, {})
    return {k: np.stack(v) for k, v in out.items()}


DATASET_OBJECTS = WorldRandomization().objects[1]  # the most objects a randomized world has


def convert_dataset(directories, size: int):
    """Load the scenes of ``generate --dense`` datasets as grounding arrays (square ``size``)."""
    out = {'rgb': [], 'labels': [], 'category': [], 'colour': [], 'scene_seed': []}
    paths = [p for d in directories for p in sorted(pathlib.Path(d, 'dense').glob('*.json'))]
    if not paths:
        raise FileNotFoundError(f'no dense/*.json under {directories}: generate with --dense')
    for path in tqdm(paths, desc='convert', unit='scene'):
        table = json.loads(path.read_text())['labels']
        category = np.full(DATASET_OBJECTS, -1, np.int8)
        colour = np.full(DATASET_OBJECTS, -1, np.int8)
        for label, entry in table.items():
            index = int(label) - FIRST_OBJECT
            if index >= 0:
                category[index] = CATEGORIES.index(entry['category'])
                colour[index] = COLOUR_NAMES.index(entry['colour'])
        rgb = np.asarray(Image.open(path.parent.parent / 'images' / f'{path.stem}.jpg')
                         .convert('RGB'))
        out['rgb'].append(resize_rgb(rgb, size))
        out['labels'].append(resize_labels(np.asarray(Image.open(path.with_suffix('.png'))),
                                           size))
        out['category'].append(category)
        out['colour'].append(colour)
        out['scene_seed'].append(int(path.stem))
    return {k: np.stack(v) for k, v in out.items()}


def main(argv=None) -> None:
    """Render a grounding dataset to an .npz file."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--first-seed', type=int, default=0)
    parser.add_argument('--scenes', type=int, default=100)
    parser.add_argument('--layouts', type=int, default=4, help='renders per built scene')
    parser.add_argument('--width', type=int, default=224)
    parser.add_argument('--height', type=int, default=168)
    parser.add_argument('--blank', action='store_true', help='also render object-free views')
    parser.add_argument('--from-dataset', nargs='+', metavar='DIR',
                        help='convert these generate --dense datasets instead of rendering')
    parser.add_argument('--size', type=int, default=224, help='--from-dataset: square side')
    args = parser.parse_args(argv)
    if args.from_dataset:
        arrays = convert_dataset(args.from_dataset, args.size)
    else:
        arrays = render_dataset(args.first_seed, args.scenes, args.layouts, args.width,
                                args.height, args.blank)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {len(arrays['rgb'])} images")


if __name__ == '__main__':
    main()
