"""
Instructions, referring expressions and the Chain of Reasoning text of dataset samples.

Instructions vary (several phrasings per relation, optional filler words, category
synonyms) and refer to an object only by words that pick it out in its scene: the category
alone when it is the only one of its kind, the colour alone when no other object has it,
else colour and category. The Chain of Reasoning always names objects by their full label
and quotes ground-truth numbers; ``trace_ros.core.answer_format`` writes it.
"""

from typing import Dict, Optional, Sequence

import numpy as np
from trace_ros.core.answer_format import (format_cor_answer, format_locate_answer,
                                          format_reference, format_references)
from trace_ros.sim.scene import Scene
from trace_ros.sim.task import FAR
from trace_train.data.relations import goal_subtype

SYNONYMS = {'mug': ('mug', 'cup'), 'block': ('block', 'cube'), 'can': ('can', 'tin'),
            'plate': ('plate', 'dish'), 'box': ('box',), 'bottle': ('bottle',),
            'bowl': ('bowl',)}
PHRASES = {
    'left of': ('to the left of {a}', 'left of {a}', 'on the left side of {a}'),
    'right of': ('to the right of {a}', 'right of {a}', 'on the right side of {a}'),
    'in front of': ('in front of {a}', 'just in front of {a}', 'on the near side of {a}'),
    'behind': ('behind {a}', 'in back of {a}', 'on the far side of {a}'),
    'next to': ('next to {a}', 'beside {a}', 'alongside {a}'),
    'near': ('near {a}', 'close to {a}', 'somewhere around {a}'),
    'between': ('between {a} and {b}', 'in the gap between {a} and {b}',
                'in between {a} and {b}'),
    'on': ('on {a}', 'onto {a}', 'on top of {a}'),
    'empty area': ('in the empty area of the table', 'somewhere free on the table',
                   'on an empty part of the table', 'in any free space on the table'),
    'closest free space': ('in the free space closest to {a}',
                           'in the nearest empty spot to {a}', 'in the free area nearest {a}'),
    'away from objects': ('away from the {others}objects', 'far from everything on the table',
                          'in the most open area of the table'),
    'left side': ('in the free space on the left side of the table',
                  'on the empty left part of the table',
                  'somewhere free on the left of the table'),
    'right side': ('in the free space on the right side of the table',
                   'on the empty right part of the table',
                   'somewhere free on the right of the table'),
    'front edge': ('in the free space along the front edge of the table',
                   'on the free table surface nearest to you',
                   'near the front edge of the table, where it is empty'),
}
HELD_TEMPLATES = ('Place {h} {p}.', 'Put {h} {p}.', 'Move {h} {p}.', 'Set {h} down {p}.',
                  'Where should {h} go? It belongs {p}.', 'I want {h} {p}.')
POINT_TEMPLATES = ('Point to a free spot {p}.', 'Please point out the free space {p}.',
                   'Find a place {p}.', 'Mark some points {p}.', 'Where can I put something {p}?',
                   'Show me where to place an item {p}.')
PREFIXES = ('', '', '', 'Please, ', 'Hey robot, ', 'Okay, ', 'Now, ', 'Carefully: ')
SUFFIXES = ('', '', '', ' please', ' if you can', ', thanks')
LOCATE_TEMPLATES = ('Where is {a}?', 'Point to {a}.', 'Locate {a}.', 'Find {a} in the image.')


def refer(scene: Scene, name: str, rng: np.random.Generator) -> str:
    """Name an object unambiguously: 'the mug', 'the red one' or 'the red mug'."""
    obj = scene.by_name(name)
    options = [f'the {obj.colour} {rng.choice(SYNONYMS[obj.category])}']
    if sum(o.category == obj.category for o in scene.objects) == 1:
        options.append(f'the {rng.choice(SYNONYMS[obj.category])}')
    if sum(o.colour == obj.colour for o in scene.objects) == 1:
        options.append(f'the {obj.colour} {rng.choice(("one", "object", "thing"))}')
    weights = np.array([3.0] + [1.0] * (len(options) - 1))
    return str(options[rng.choice(len(options), p=weights / weights.sum())])


def _decorate(text: str, rng: np.random.Generator) -> str:
    prefix, suffix = rng.choice(PREFIXES), rng.choice(SUFFIXES)
    if prefix:
        text = prefix + (text if text.startswith('I ') else text[0].lower() + text[1:])
    if suffix:
        text = text[:-1] + suffix + text[-1]
    return text[0].upper() + text[1:]


def instruction(scene: Scene, relation: str, references: Sequence[str], held: Optional[str],
                rng: np.random.Generator) -> str:
    """Phrase a placement instruction for a relation, its references and the held object."""
    names = dict(zip('ab', (refer(scene, r, rng) for r in references)))
    phrase = str(rng.choice(PHRASES[relation]))
    if relation == 'on' and scene.by_name(references[0]).category != 'plate':
        phrase = 'on top of {a}'
    phrase = phrase.format(others='other ' if held else '', **names)
    if held:
        text = str(rng.choice(HELD_TEMPLATES)).format(h=refer(scene, held, rng), p=phrase)
    else:
        text = str(rng.choice(POINT_TEMPLATES)).format(p=phrase)
    return _decorate(text, rng)


def locate_question(scene: Scene, name: str, rng: np.random.Generator) -> str:
    """Ask where one object is (an auxiliary grounding question)."""
    return str(rng.choice(LOCATE_TEMPLATES)).format(a=refer(scene, name, rng))


def locate_answer(scene: Scene, name: str, point: Sequence[float], decimals: int = 3) -> str:
    """Answer a locate question with the object's full label."""
    return format_locate_answer(scene.by_name(name).label, point, decimals)


def _cm(metres: float) -> str:
    return f'{100 * metres:.0f} cm'


def target_area_text(scene: Scene, relation: str, references: Sequence[str],
                     held: Optional[str], facts: Dict[str, float]) -> str:
    """Describe the target area (step 3) with the region's ground-truth numbers."""
    labels = [f'the {scene.by_name(r).label}' for r in references]
    a = labels[0] if labels else ''
    fit = f', where the {scene.by_name(held).label} fits' if held else ''
    free = f'the free table surface at least {_cm(facts.get("clearance", 0))} from other objects'
    texts = {
        'next to': f'{free}, beside {a} on its left or right, within '
                   f'{_cm(facts.get("far", 0))} of it',
        'near': f'{free}, around {a} within {_cm(facts.get("far", 0))} of it',
        'between': f'{free}, in the {_cm(facts.get("gap", 0))} gap between {" and ".join(labels)}',
        'empty area': f'{free}, within reach of the arm',
        'closest free space': f'{free}, {_cm(facts.get("nearest", 0))} to '
                              f'{_cm(facts.get("farthest", 0))} from the centre of {a}',
        'away from objects': f'the open table surface at least {_cm(facts.get("clearance", 0))} '
                             'from every object',
        'left side': f'{free}, on the left part of the table',
        'right side': f'{free}, on the right part of the table',
        'front edge': f'{free}, along the table edge nearest the camera',
    }
    if relation == 'on':
        kind = 'plate' if scene.by_name(references[0]).category == 'plate' else 'top face'
        text = (f'the inner part of {a}' if kind == 'plate' else f'the top face of {a}')
        text += f', {_cm(facts.get("height", 0))} above the table'
    elif relation in texts:
        text = texts[relation]
    else:  # the four directions
        text = f'{free}, {relation} {a} as seen in the image, up to {_cm(FAR)} from it'
    return text + fit


def reference_text(scene: Scene, relation: str, references: Sequence[str],
                   points: Sequence[Sequence[float]], surface_point: Sequence[float]) -> str:
    """Write step 2: the reference objects with their image locations, or the table."""
    if not references:
        side = {'left side': 'the left side of the table', 'right side':
                'the right side of the table', 'front edge': 'the front edge of the table'}
        return format_reference(side.get(relation, 'the table surface'), surface_point)
    return format_references([f'the {scene.by_name(r).label}' for r in references], points)


def chain_of_reasoning(scene: Scene, relation: str, references: Sequence[str],
                       held: Optional[str], facts: Dict[str, float],
                       reference_points: Sequence[Sequence[float]],
                       surface_point: Sequence[float], target_box: Sequence[float],
                       points: np.ndarray, point_order: str = 'random') -> str:
    """
    Write the full CoR answer (four steps and the answer list) in the canonical format.

    With ``point_order`` 'interior' (samples.interior_pixels) step 3 gives the area's centre,
    the first point, instead of its box.
    """
    area = {'target_box': target_box}
    coordinates = f'{len(points)} points spread over the visible part of the target area'
    if point_order == 'interior':
        area = {'target_centre': points[0]}
        coordinates = f'{len(points)} points around the centre of the target area, it first'
    return format_cor_answer(
        goal_subtype(relation),
        reference_text(scene, relation, references, reference_points, surface_point),
        target_area_text(scene, relation, references, held, facts),
        points, coordinates=coordinates, **area)
