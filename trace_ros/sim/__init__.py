"""
MuJoCo tabletop simulation (no rclpy): scenes, rendering, ground truth, goal execution.

- ``scene``: ``generate_scene(SceneConfig(seed=...))`` -> ``Scene`` (objects, MJCF, model)
- ``render``: ``SceneRenderer(scene, model).render(data)`` -> RGB, depth (m), labels
- ``ground_truth``: object poses, footprints, table/region image masks, support heights
- ``task``: ``make_task(scene)`` -> instruction + target region in the world
- ``executor``: ``PlacementExecutor(scene).execute(task, goal)`` -> ``PlacementOutcome``
- ``sdf``: the scene as a Gazebo SDF world
- ``randomization``: ``draw_world(seed)`` -> a randomized world's ``SceneConfig`` (camera
  anywhere, lights, table, floor, objects); ``world`` builds it, ``sensor`` adds image effects
"""
