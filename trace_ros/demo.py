"""
Demo: a simulated tabletop, placement instructions, and the TRACE pipeline placing objects.

For each scene (a seed): render RGB-D, pose the scene's placement task, answer it, then run
the same pipeline trace_node runs (parse the reasoning and points, robust depth,
deprojection, camera-to-world transform, surface normal, goal pose) and let the simulator
place the object at the goal and judge it.

Answers come from the embedded ``trace-tiny`` model (``models/``) when it is installed;
until then from the simulation's ground truth, written in TRACE's chain-of-reasoning
format (the dataset pipeline's teacher): that exercises the pipeline and the robot loop,
not a model's skill, and the output says so. Annotated frames go to ``--out``.
"""

import argparse
import os
import pathlib
from typing import Optional

import numpy as np
from PIL import Image
from trace_ros.core.annotate import annotate
from trace_ros.core.pipeline import locate_placement, prepare_frame
from trace_ros.core.prompts import build_prompt, format_cor_answer, GOAL_OBJECT_REFERENCE
from trace_ros.core.status import PlacementError
from trace_ros.models import default_model_dir


def teacher_answer(scene, task, frame, rng) -> str:
    """Write the ground-truth CoR answer for ``task`` from the render (no model involved)."""
    from trace_ros.sim.ground_truth import object_mask, region_mask
    camera = scene.camera
    height, width = frame.depth.shape
    mask = region_mask(camera, np.asarray(task.region), task.region_z, frame.depth)
    rows, cols = np.nonzero(mask)
    if len(rows) < 3:
        raise ValueError('the target region is not visible')
    pick = rng.choice(len(rows), size=min(4, len(rows)), replace=False)
    points = np.stack([(cols[pick] + 0.5) / width, (rows[pick] + 0.5) / height], axis=1)
    ref_rows, ref_cols = np.nonzero(object_mask(scene, frame.labels, task.reference))
    reference_point = ((ref_cols.mean() + 0.5) / width, (ref_rows.mean() + 0.5) / height)
    box = ((cols.min() + 0.5) / width, (rows.min() + 0.5) / height,
           (cols.max() + 0.5) / width, (rows.max() + 0.5) / height)
    reference = scene.by_name(task.reference).label
    return format_cor_answer(GOAL_OBJECT_REFERENCE, f'the {reference}',
                             f'the free table surface {task.relation} the {reference}', points,
                             reference_point=reference_point, target_box=box)


def model_backend():
    """Return the embedded model's backend, or None when it is not installed yet."""
    path = default_model_dir()
    if not os.path.isdir(path):
        return None
    from trace_ros.backends import make_backend
    return make_backend('transformers', model=path, device='cpu')


def run_scene(seed: int, backend, out: pathlib.Path, rng) -> Optional[bool]:
    """Pose, answer and execute the task of one scene; print and save what happened."""
    from trace_ros.sim.executor import PlacementExecutor
    from trace_ros.sim.render import RenderSettings, SceneRenderer
    from trace_ros.sim.scene import generate_scene, SceneConfig
    from trace_ros.sim.task import make_task
    scene = generate_scene(SceneConfig(seed=seed))
    model = scene.build()
    data = scene.make_data(model)
    with SceneRenderer(scene, model, RenderSettings(shadows=True)) as renderer:
        frame = renderer.render(data, rgb=True, depth=True, segmentation=True)
    task = make_task(scene, 0)
    camera = scene.camera
    print(f'\n[scene {seed}] {task.instruction}')
    if backend is None:
        text = teacher_answer(scene, task, frame, rng)
        source = 'ground-truth reasoning (teacher, not a model)'
    else:
        text = backend.generate(frame.rgb, build_prompt(task.instruction)).text
        source = f'model {backend.model_id}'
    print(f'  answer from {source}:\n    ' + text.replace('\n', '\n    '))
    rgbd = prepare_frame(frame.rgb, frame.depth, camera.pinhole, 'camera_color_optical_frame')
    try:
        placement = locate_placement(rgbd, text, camera.world_from_optical)
    except PlacementError as err:
        print(f'  -> {err.status.name}: {err.message}')
        return False
    goal = placement.position
    print(f'  goal in world: ({goal[0]:.3f}, {goal[1]:.3f}, {goal[2]:.3f}) m from '
          f'{int(placement.has_depth.sum())} points')
    outcome = PlacementExecutor(scene).execute(task, goal)
    verdict = 'SUCCESS' if outcome.success else 'FAILURE'
    print(f'  -> {verdict}{": " + outcome.reason if outcome.reason else ""}')
    image = annotate(frame.rgb, placement.pixels, valid=placement.has_depth,
                     goal_pixel=placement.goal_pixel,
                     text=f'{task.instruction}\n{verdict}\n{text}')
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(out / f'scene{seed}.png')
    return outcome.success


def main(argv=None) -> int:
    """Run the demo over a few seeded scenes; exit status 1 when nothing succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--scenes', type=int, default=8, help='number of scenes')
    parser.add_argument('--seed', type=int, default=0, help='first scene seed')
    parser.add_argument('--out', default='out/demo', help='folder for annotated frames')
    args = parser.parse_args(argv)
    os.environ.setdefault('MUJOCO_GL', 'egl')
    backend = model_backend()
    rng = np.random.default_rng(args.seed)
    results = [run_scene(seed, backend, pathlib.Path(args.out), rng)
               for seed in range(args.seed, args.seed + args.scenes)]
    print(f'\n{sum(bool(r) for r in results)}/{len(results)} placements succeeded; '
          f'annotated frames in {args.out}/')
    return 0 if any(results) else 1


if __name__ == '__main__':
    raise SystemExit(main())
