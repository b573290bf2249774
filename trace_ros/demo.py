"""
Demo: the closed loop over real ROS 2 nodes on simulated tabletops, with the embedded model.

For each seeded scene, ``trace_sim`` renders the MuJoCo tabletop and publishes RGB-D +
CameraInfo and its placement task; the operator publishes the task's instruction;
``trace_node`` answers it with the embedded ``trace-tiny`` model (reasoning + points),
deprojects the points and publishes a placement goal in the world frame;
``trace_goal_executor`` places the object there and reports success or failure. All three
run in this process on one executor and talk over DDS (``trace_ros.ros.closed_loop``).
Printed per scene: the instruction, the reasoning, the 3D goal, the outcome and the
timings; saved: trace_node's debug image next to the scene after the placement.
"""

import argparse
import json
import os
import pathlib
import random

from PIL import Image
from trace_ros.models import default_model_dir


def print_episode(episode) -> None:
    """Print one episode's instruction, reasoning, goal, outcome and timings."""
    print(f'\n[scene {episode.seed}] {episode.instruction}')
    print(f'  reasoning of {episode.model_id}:\n    '
          + (episode.reasoning or '(none)').replace('\n', '\n    '))
    if episode.attempts > 1:
        print(f'  (asked {episode.attempts} times: trace_node had no fresh camera frame)')
    if episode.goal is None:
        print(f'  -> no goal: {episode.reason}')
        return
    x, y, z = episode.goal
    print(f'  goal in world: ({x:.3f}, {y:.3f}, {z:.3f}) m')
    verdict = 'SUCCESS' if episode.success else 'FAILURE'
    print(f'  -> {verdict}{": " + episode.reason if episode.reason else ""}')
    print(f'  timings: render {episode.render_s:.3f} s, inference {episode.inference_s:.2f} s, '
          f'node {episode.node_s:.3f} s, execution {episode.execution_s:.2f} s, '
          f'instruction to outcome {episode.loop_s:.2f} s')


def main(argv=None) -> int:
    """
    Run the closed loop over a few seeded scenes and report each outcome.

    Exit status 0 once every scene went through the loop: how many placements succeed is the
    model's score (its card), not the demo's health. A loop that breaks (no task, no result
    within the timeout) raises.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--scenes', type=int, default=8, help='number of scenes')
    parser.add_argument('--seed', type=int, default=0, help='first scene seed')
    parser.add_argument('--relations', choices=('normal', 'hard'), default='normal',
                        help='relations the tasks are drawn from')
    parser.add_argument('--model', default='', help='model dir or hub id (default: trace-tiny)')
    parser.add_argument('--prompt-style', choices=('cor', 'plain'), default='cor')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID of the demo (default: $ROS_DOMAIN_ID, else a '
                        'random one in 100-199 so other ROS graphs are not disturbed)')
    parser.add_argument('--randomize-world', action='store_true',
                        help="randomized worlds: each seed's own camera, lights, table, "
                        'objects and sensor effects (docs/SIMULATION.md)')
    parser.add_argument('--out', default='out/demo', help='folder for annotated frames')
    args = parser.parse_args(argv)
    os.environ.setdefault('MUJOCO_GL', 'egl')
    if not args.model and not os.path.isdir(default_model_dir()):
        parser.error(f'the embedded model is not installed at {default_model_dir()}')
    from trace_ros.ros.closed_loop import ClosedLoop
    domain = args.domain_id
    if domain is None:
        domain = int(os.environ.get('ROS_DOMAIN_ID') or random.randint(100, 199))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f'closed loop on ROS_DOMAIN_ID {domain}: trace_sim -> trace_node -> '
          'trace_goal_executor')
    episodes = []
    with ClosedLoop(model=args.model, prompt_style=args.prompt_style, domain_id=domain,
                    randomize_world=args.randomize_world) as loop:
        for seed in range(args.seed, args.seed + args.scenes):
            episode = loop.run(seed, relations=args.relations)
            print_episode(episode)
            Image.fromarray(episode.frame()).save(out / f'scene{seed}.png')
            episodes.append(episode)
    (out / 'episodes.json').write_text(json.dumps([e.summary() for e in episodes], indent=2))
    successes = sum(e.success for e in episodes)
    print(f'\n{successes}/{len(episodes)} placements succeeded; annotated frames in {out}/')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
