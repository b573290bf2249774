"""
Renders checked against geometry.

Depth vs ray casts, segmentation vs projected object points, CameraInfo intrinsics vs
where MuJoCo draws a point, region masks vs segmentation.
"""

import mujoco
import numpy as np
import pytest
from trace_ros.sim.ground_truth import (footprint, object_mask, region_mask, table_mask,
                                        visible_table_mask)
from trace_ros.sim.render import CAMERA_NAME, RenderSettings, SceneRenderer
from trace_ros.sim.scene import (FIRST_OBJECT_LABEL, generate_scene, LABEL_ROBOT, SceneConfig,
                                 TABLE_TOP_Z)
from trace_ros.sim.task import make_task

VISIBLE_GROUPS = np.array([1, 1, 1, 0, 0, 0], np.uint8)  # what the renderer draws


@pytest.fixture(scope='module', params=[0, 3])
def world(request):
    scene = generate_scene(SceneConfig(seed=request.param))
    model = scene.build()
    data = scene.make_data(model)
    with SceneRenderer(scene, model, RenderSettings(shadows=False)) as renderer:
        frame = renderer.render(data, segmentation=True)
    return scene, model, data, frame


def cast(model, data, origin, direction):
    """Distance along a unit direction to the first drawn surface and its body id."""
    geom = np.array([-1], np.int32)
    dist = mujoco.mj_ray(model, data, np.asarray(origin, float), np.asarray(direction, float),
                         VISIBLE_GROUPS, 1, -1, geom)
    return dist, (int(model.geom_bodyid[geom[0]]) if geom[0] >= 0 else -1)


def test_frame_shapes(world):
    scene, _, _, frame = world
    shape = (scene.camera.height, scene.camera.width)
    assert frame.rgb.shape == shape + (3,) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == shape and frame.depth.dtype == np.float32
    assert frame.labels.shape == shape
    assert frame.rgb.mean() > 60  # lit, not black
    expected = {0, 1, LABEL_ROBOT} | {scene.label_of(o.name) for o in scene.objects}
    assert set(np.unique(frame.labels)) == expected


def test_depth_matches_ray_casts(world):
    scene, model, data, frame = world
    camera = scene.camera
    rays = camera.pixel_rays()
    errors = []
    for v in range(4, camera.height, 23):
        for u in range(4, camera.width, 29):
            length = np.linalg.norm(rays[v, u])
            dist, _ = cast(model, data, camera.position, rays[v, u] / length)
            assert dist > 0
            errors.append(abs(frame.depth[v, u] - dist / length))  # z-depth
    errors = np.array(errors)
    assert len(errors) > 400
    assert np.median(errors) < 1e-4 and errors.max() < 3e-3


def surface_point(scene, obj):
    """Return a point on (or just inside) the object's surface facing the camera."""
    x, y, z = obj.position
    if obj.category not in ('bowl', 'mug'):
        return np.array([x, y, z + obj.shape.height - 1e-3])  # top centre
    # Containers are open: take the middle of the wall on the camera's side.
    wall = obj.shape.parts[1]  # first wall segment, at yaw 0 in the body frame
    toward = scene.camera.position[:2] - np.array([x, y])
    toward /= np.linalg.norm(toward)
    return np.array([*(np.array([x, y]) + np.hypot(*wall.pos[:2]) * toward), z + wall.pos[2]])


def test_projected_object_points_land_on_their_objects(world):
    scene, model, data, frame = world
    camera = scene.camera
    checked = 0
    for obj in scene.objects:
        point = surface_point(scene, obj)
        direction = point - camera.position
        unit = direction / np.linalg.norm(direction)
        dist, body = cast(model, data, camera.position, unit)
        if body != model.body(obj.name).id:
            continue  # hidden behind another object from this viewpoint
        hit = camera.position + dist * unit  # the 3D point of the object seen there
        uv, _ = camera.project(hit[None])
        u, v = np.round(uv[0]).astype(int)
        assert frame.labels[v, u] == scene.label_of(obj.name), obj.name
        checked += 1
    assert checked >= len(scene.objects) - 1


def test_camera_info_intrinsics_reproduce_the_renderer(world):
    """A small sphere placed on the ray K says goes through a pixel is drawn on that pixel."""
    scene, model, data, _ = world
    camera = scene.camera
    renderer = mujoco.Renderer(model, camera.height, camera.width)
    renderer.enable_depth_rendering()
    try:
        for uv in [(320.0, 240.0), (100.3, 80.7), (590.2, 430.6), (25.5, 455.0), (610.0, 30.0)]:
            xy = camera.pinhole.pixels_to_rays(np.array([uv]))[0]
            point = camera.world_from_optical.apply(np.array([xy[0], xy[1], 1.0]) * 0.3)
            renderer.update_scene(data, CAMERA_NAME)
            scn = renderer.scene
            mujoco.mjv_initGeom(scn.geoms[scn.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE,
                                np.array([0.006, 0, 0]), point, np.eye(3).ravel(),
                                np.array([1, 0, 1, 1], np.float32))
            scn.ngeom += 1
            mask = renderer.render() < 0.31  # the scene itself is > 0.5 m away
            rows, cols = np.nonzero(mask)
            assert 200 < len(rows) < 600
            assert abs(cols.mean() - uv[0]) < 0.5 and abs(rows.mean() - uv[1]) < 0.5, uv
    finally:
        renderer.close()


def test_region_masks_agree_with_segmentation(world):
    scene, _, _, frame = world
    table = table_mask(scene, frame.depth)
    labelled_table = visible_table_mask(frame.labels)
    assert table.sum() > 0.2 * table.size
    assert (labelled_table[table]).mean() > 0.99  # visible table top is labelled table
    assert table_mask(scene).sum() > table.sum()  # objects occlude parts of it
    own, total = 0, 0
    for obj in scene.objects:  # the hidden part of a footprint is hidden by objects
        hidden = region_mask(scene.camera, footprint(scene, obj.name), TABLE_TOP_Z)
        hidden &= ~region_mask(scene.camera, footprint(scene, obj.name), TABLE_TOP_Z,
                               frame.depth)
        assert (frame.labels[hidden] >= FIRST_OBJECT_LABEL).mean() > 0.99
        own += object_mask(scene, frame.labels, obj.name)[hidden].sum()
        total += hidden.sum()
    assert own > 0.8 * total  # mostly by the object standing on it
    task = make_task(scene)
    region = region_mask(scene.camera, np.array(task.region), task.region_z)
    uv, _ = scene.camera.project(np.array([task.free_spot]))
    u, v = np.round(uv[0]).astype(int)
    assert region[v, u]
