"""
Dataset samples are correct by construction, checked against independent ground truth.

Answer points lie in their masks, masks agree with the 3D regions (MuJoCo ray casts decide
visibility, not the depth image the masks were cut with), CoR reference locations land on
the objects' pixels near their projected centres, directions point the right way, and the
parser reads back exactly the points written.
"""

import io
import re

import mujoco
import numpy as np
from PIL import Image
import pytest
from trace_ros.core.parsing import parse_answer
from trace_ros.sim.scene import generate_scene, SceneConfig, TABLE_TOP_Z
from trace_train.data import language
from trace_train.data.regions import Region
from trace_train.data.relations import HARD_RELATIONS, held_radius, RELATIONS, TRAIN_RELATIONS
from trace_train.data.samples import DataConfig, make_scene_samples, pixel_point

VISIBLE_GROUPS = np.array([1, 1, 1, 0, 0, 0], np.uint8)
CONFIGS = [DataConfig(relations=tuple(RELATIONS), questions_per_scene=6, locate_per_scene=2),
           DataConfig(width=224, height=224, relations=tuple(RELATIONS), questions_per_scene=6,
                      locate_per_scene=2, split='small'),
           DataConfig(world='random', max_side=320, relations=tuple(RELATIONS),
                      questions_per_scene=6, locate_per_scene=2, split='random')]
# random worlds: 16:9 and 4:3 views, and one from behind the arm (yaw 175 deg, 1 object)
CASES = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 3), (2, 5), (2, 35)]
REFERENCE_RE = re.compile(r'the ([a-z ]+), at \((\d\.\d+), (\d\.\d+)\)')


@pytest.fixture(scope='module', params=CASES, ids=[f'cfg{c}-scene{s}' for c, s in CASES])
def generated(request):
    config_index, scene_index = request.param
    result = make_scene_samples(CONFIGS[config_index], scene_index)
    model = result.scene.build()
    data = result.scene.make_data(model)
    return result, model, data


def placements(result):
    return [s for s in result.samples if s.record['kind'] == 'placement']


def test_scene_gives_samples(generated):
    result, _, _ = generated
    assert len(placements(result)) == 6
    assert sum(s.record['kind'] == 'locate' for s in result.samples) == \
        min(2, len(result.scene.objects))
    assert len({s.record['id'] for s in result.samples}) == len(result.samples)


def test_answer_points_lie_in_their_masks_also_after_jpeg(generated):
    result, _, _ = generated
    for sample in result.samples:
        height, width = sample.mask.shape
        points = np.array(sample.record['points'])
        cols, rows = (points[:, 0] * width).astype(int), (points[:, 1] * height).astype(int)
        assert sample.mask[rows, cols].all(), sample.record['id']
        buffer = io.BytesIO()
        Image.fromarray(sample.mask.astype(np.uint8) * 255).save(buffer, 'JPEG', quality=90)
        jpeg = np.array(Image.open(buffer)) >= 128
        assert jpeg[rows, cols].all(), sample.record['id']
        assert 3 <= len(points) <= 8 or sample.record['kind'] == 'locate'


def test_parser_reads_back_exactly_the_points_written(generated):
    result, _, _ = generated
    for sample in result.samples:
        record = sample.record
        parsed = parse_answer(record['cor'])
        assert parsed.ok and not parsed.errors and parsed.rejected == 0
        np.testing.assert_array_equal(parsed.points, np.array(record['points']))
        np.testing.assert_array_equal(parse_answer(record['answer']).points, parsed.points)
        if record['kind'] == 'placement':
            assert parsed.goal_subtype == record['goal_subtype']
            assert parsed.target_area and parsed.coordinates.startswith(str(len(parsed.points)))


def cast_visible(model, data, camera_position, points):
    """Whether the first surface on the line from the camera to each point is the point."""
    visible = []
    for point in points:
        offset = point - camera_position
        distance = np.linalg.norm(offset)
        geom = np.array([-1], np.int32)
        hit = mujoco.mj_ray(model, data, camera_position, offset / distance, VISIBLE_GROUPS, 1,
                            -1, geom)
        visible.append(hit < 0 or hit > distance - 0.004)
    return np.array(visible)


def footprint_points(camera, pixels, z):
    """World (x, y) where 3x3 sub-pixel rays of each pixel meet the plane at ``z`` (N, 9, 2)."""
    k, rotation, origin = camera.k, camera.rotation, camera.position
    offsets = np.array([(du, dv) for du in (-0.45, 0, 0.45) for dv in (-0.45, 0, 0.45)])
    uv = pixels[:, None, :] + offsets[None]
    rays = np.stack([(uv[..., 0] - k[0, 2]) / k[0, 0], (uv[..., 1] - k[1, 2]) / k[1, 1],
                     np.ones(uv.shape[:2])], axis=-1) @ rotation.T
    scale = (z - origin[2]) / rays[..., 2]
    return origin[:2] + rays[..., :2] * scale[..., None]


def test_masks_match_the_3d_regions(generated):
    result, model, data = generated
    camera = result.scene.camera
    rng, checked = np.random.default_rng(0), 0
    for sample in placements(result):
        region = Region.from_dict(sample.record['region'])
        (x0, y0), (x1, y1) = region.bounds()
        xy = rng.uniform([x0 - 0.1, y0 - 0.1], [x1 + 0.1, y1 + 0.1], (1000, 2))
        world = np.column_stack([xy, np.full(len(xy), region.z)])
        uv, z = camera.project(world)
        pixels = np.round(uv)
        ok = (z > 0) & np.all((pixels >= 0) & (pixels < (camera.width, camera.height)), axis=1)
        world, pixels = world[ok], pixels[ok].astype(int)
        # Only points whose whole pixel lies on one side of the region's boundary count.
        corners = footprint_points(camera, pixels, region.z)
        inside = region.contains(corners.reshape(-1, 2)).reshape(corners.shape[:2])
        hits = sample.mask[pixels[:, 1], pixels[:, 0]]
        outside = ~inside.any(axis=1) & ~region.contains(world[:, :2])
        assert not hits[outside].any(), sample.record['id']
        inside = inside.all(axis=1) & region.contains(world[:, :2])
        seen = [cast_visible(model, data, camera.position, world[inside] + offset)
                for offset in ([0, 0, 0], [0.01, 0, 0], [-0.01, 0, 0], [0, 0.01, 0],
                               [0, -0.01, 0])]
        visible, hidden = np.all(seen, axis=0), ~np.any(seen, axis=0)
        assert hits[inside][visible].all(), sample.record['id']
        assert not hits[inside][hidden].any(), sample.record['id']
        checked += visible.sum()
    assert checked > 100


def test_cor_reference_locations_are_the_objects_image_locations(generated):
    result, _, _ = generated
    scene, labels, camera = result.scene, result.frame.labels, result.scene.camera
    height, width = labels.shape
    checked = 0
    for sample in result.samples:
        record = sample.record
        step = parse_answer(record['cor']).reference if record['kind'] == 'placement' else ''
        found = REFERENCE_RE.findall(step)
        if record['kind'] == 'placement' and record['references']:
            assert [scene.by_name(f[0]).name for f in found] == record['references']
        for name, (x, y) in zip(record['references'], record['reference_points']):
            obj = scene.by_name(name)
            col, row = int(x * width), int(y * height)
            assert labels[row, col] == scene.label_of(name)
            centre = np.array([[*obj.position[:2], TABLE_TOP_Z + obj.shape.height / 2]])
            (u, v), = camera.project(centre)[0]
            edge, _ = camera.project(centre + [0, 0, obj.shape.height / 2 + obj.shape.radius])
            reach = max(np.linalg.norm(edge[0] - (u, v)), 4.0)
            assert np.hypot(x * width - 0.5 - u, y * height - 0.5 - v) < reach, name
            checked += 1
    assert checked >= 2


def test_directions_point_the_right_way_in_the_image(generated):
    result, _, _ = generated
    height, width = result.frame.labels.shape
    for sample in placements(result):
        record = sample.record
        if record['relation'] not in ('left of', 'right of', 'in front of', 'behind'):
            continue
        rows, cols = np.nonzero(sample.mask)
        x, y = np.array(record['reference_points'][0]) * (width, height) - 0.5
        sign = {'left of': (cols.mean() < x), 'right of': (cols.mean() > x),
                'in front of': (rows.mean() > y), 'behind': (rows.mean() < y)}
        assert sign[record['relation']], record['id']


def test_held_object_fits_everywhere_in_the_region(generated):
    result, _, _ = generated
    scene = result.scene
    for sample in placements(result):
        record = sample.record
        if record['relation'] == 'on':
            continue
        radius = held_radius(scene, record['held'])
        grid = Region.from_dict(record['region']).grid(0.02)
        for obj in scene.objects:
            if obj.name != record['held']:
                assert (distance_to_footprint(obj, grid) >= radius).all(), (record['id'],
                                                                            obj.name)


def distance_to_footprint(obj, xy):
    """Distance of world points to an object's footprint (its box or its bounding circle)."""
    offset = xy - obj.position[:2]
    if obj.shape.box_half is None:
        return np.hypot(*offset.T) - obj.shape.radius
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    local = np.abs(offset @ np.array([[c, -s], [s, c]]))
    return np.hypot(*np.maximum(local - obj.shape.box_half, 0.0).T)


@pytest.mark.parametrize('seed', range(6))
def test_referring_expressions_pick_out_one_object(seed):
    scene = generate_scene(SceneConfig(seed=seed))
    rng = np.random.default_rng(seed)
    for obj in scene.objects:
        for _ in range(10):
            words = language.refer(scene, obj.name, rng).split()[1:]
            matches = [o for o in scene.objects
                       if all(w in (o.colour, 'one', 'object', 'thing')
                              or w in language.SYNONYMS[o.category] for w in words)]
            assert matches == [obj], (words, [o.name for o in matches])


def test_hard_relations_are_held_out_of_training():
    assert set(HARD_RELATIONS) and not set(HARD_RELATIONS) & set(TRAIN_RELATIONS)
    assert DataConfig().relations == TRAIN_RELATIONS
    assert set(TRAIN_RELATIONS) | set(HARD_RELATIONS) == set(RELATIONS)


@pytest.mark.parametrize('width', [160, 224, 640, 800, 801, 1000, 1920])
def test_written_points_stay_in_their_pixels_at_any_width(width):
    decimals = DataConfig(width=width, height=width).decimals
    columns = np.arange(width)
    written = [pixel_point((0, u), width, width, decimals)[0] for u in columns]
    np.testing.assert_array_equal(np.floor(np.array(written) * width), columns)
    assert np.floor(float(f'{written[-1]:.{decimals}f}') * width) == width - 1


def test_interior_points_follow_from_the_mask_alone():
    from trace_train.data.samples import interior_pixels
    mask = np.zeros((30, 50), bool)
    mask[5:26, 10:41] = True  # rows 5-25, columns 10-40: centre (15, 25), depth 11 there
    pixels = interior_pixels(mask, 5)
    assert pixels[0].tolist() == [15, 25]
    # The others keep at least 6 erosions deep (rows 10-20, columns 15-35), spread to its corners.
    assert pixels[1].tolist() in ([10, 15], [10, 35], [20, 15], [20, 35])
    assert ((pixels >= [10, 15]) & (pixels <= [20, 35])).all()
    assert len({tuple(p) for p in pixels.tolist()}) == 5
    assert (interior_pixels(mask, 5) == pixels).all()
    thin = np.zeros((30, 50), bool)
    thin[10, 5:9] = True  # one row of 4: too few deep pixels, all of them are used
    assert sorted(map(tuple, interior_pixels(thin, 4).tolist())) == [(10, c) for c in range(5, 9)]
    with pytest.raises(ValueError):
        DataConfig(point_order='sorted')


def test_interior_point_order_in_generated_samples():
    config = DataConfig(width=224, height=168, questions_per_scene=4, point_order='interior')
    first, again = make_scene_samples(config, 0), make_scene_samples(config, 0)
    placed = placements(first)
    assert placed and [s.record['points'] for s in placed] == \
        [s.record['points'] for s in placements(again)]
    for sample in placed:
        height, width = sample.mask.shape
        points = np.array(sample.record['points'])
        assert sample.mask[(points[:, 1] * height).astype(int),
                           (points[:, 0] * width).astype(int)].all()
        x, y = sample.record['points'][0]
        centre = re.search(r'centred at \(([-\d.]+), ([-\d.]+)\)\.', sample.record['cor'])
        assert centre, sample.record['cor']  # the first point, written to 3 decimals
        assert [float(v) for v in centre.groups()] == pytest.approx([x, y], abs=1e-3)
        assert ', x 0.' not in sample.record['cor']  # no box
