"""
Statistics of a generated split, a plot of them and a contact sheet of samples.

``write_report(out, records, counters, run)`` writes ``stats.json`` (counts per relation,
goal subtype and kind, points per answer, region sizes, rejection rates, run speed and
size on disk), ``stats.png`` and ``contact_sheet.jpg`` (images with the target mask in
green, answer points in red, reference locations as blue crosses, the instruction above).
"""

import collections
import json
import pathlib
import textwrap
from typing import Dict, List, Optional

from matplotlib.figure import Figure
import numpy as np
from PIL import Image, ImageDraw


def _quantiles(values) -> Dict[str, float]:
    if not len(values):
        return {}
    q = np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0])
    return dict(zip(('min', 'p10', 'median', 'p90', 'max'), (round(float(v), 5) for v in q)))


def folder_bytes(out: pathlib.Path) -> int:
    """Count the bytes under ``out`` (chunk files excluded: they duplicate the records)."""
    return sum(p.stat().st_size for p in out.rglob('*')
               if p.is_file() and p.parent.name != 'chunks')


def statistics(records: List[Dict], counters: Dict[str, int]) -> Dict:
    """Compute the numbers of stats.json (module docstring)."""
    placement = [r for r in records if r['kind'] == 'placement']
    attempts = counters.get('attempts', 0)
    rejected = {k[len('rejected_'):]: v for k, v in sorted(counters.items())
                if k.startswith('rejected_')}
    return {
        'samples': len(records),
        'scenes': counters.get('scenes', 0),
        'scenes_failed': counters.get('scene_failed', 0),
        'views_redrawn': counters.get('view_redrawn', 0),
        'kinds': dict(collections.Counter(r['kind'] for r in records)),
        'relations': dict(collections.Counter(r['relation'] for r in placement).most_common()),
        'goal_subtypes': dict(collections.Counter(r['goal_subtype'] for r in placement)),
        'with_held_object': sum(r['held'] is not None for r in placement),
        'points_per_answer': dict(sorted(collections.Counter(
            len(r['points']) for r in placement).items())),
        'region_image_fraction': _quantiles(
            [r['mask_pixels'] / (r['width'] * r['height']) for r in placement]),
        'region_area_m2': _quantiles([r['region_area'] for r in placement]),
        'visible_fraction': _quantiles([r['visible_fraction'] for r in placement]),
        'draws': attempts,
        'rejection_rate': round(sum(rejected.values()) / attempts, 4) if attempts else None,
        'rejections': {k: {'count': v, 'rate': round(v / attempts, 4)}
                       for k, v in rejected.items()},
        'unfilled_questions': counters.get('unfilled', 0),
    }


def plot_statistics(stats: Dict, records: List[Dict], path) -> None:
    """Plot relation counts, points per answer, region sizes and rejection reasons."""
    placement = [r for r in records if r['kind'] == 'placement']
    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2)
    subtype = {r['relation']: r['goal_subtype'] for r in placement}
    names = list(stats['relations'])[::-1]
    colours = ['tab:blue' if subtype[n] == 'object reference' else 'tab:orange' for n in names]
    axes[0, 0].barh(names, [stats['relations'][n] for n in names], color=colours)
    axes[0, 0].set_title('samples per relation (blue: object reference, orange: free space)',
                         fontsize=9)
    counts = stats['points_per_answer']
    axes[0, 1].bar([int(k) for k in counts], list(counts.values()), color='tab:green')
    axes[0, 1].set_title('points per answer')
    fractions = [100 * r['mask_pixels'] / (r['width'] * r['height']) for r in placement]
    axes[1, 0].hist(fractions, bins=30, color='tab:purple')
    axes[1, 0].set_title('visible target region, % of the image')
    reasons = stats['rejections']
    axes[1, 1].barh(list(reasons), [100 * v['rate'] for v in reasons.values()], color='tab:red')
    axes[1, 1].set_title(f'rejected draws, % of {stats["draws"]} '
                         f'(total {100 * (stats["rejection_rate"] or 0):.1f} %)', fontsize=9)
    fig.suptitle(f'{stats["samples"]} samples from {stats["scenes"]} scenes')
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _cross(draw: ImageDraw.ImageDraw, u: float, v: float, size: float, fill) -> None:
    draw.line([(u - size, v - size), (u + size, v + size)], fill=fill, width=3)
    draw.line([(u - size, v + size), (u + size, v - size)], fill=fill, width=3)


def annotate(image: Image.Image, mask: Optional[np.ndarray], record: Dict) -> Image.Image:
    """Draw the mask tinted green, the points red and the reference locations blue."""
    rgb = np.array(image.convert('RGB'), dtype=np.float32)
    if mask is not None:
        rgb[mask] = 0.45 * rgb[mask] + 0.55 * np.array([40, 220, 40])
    out = Image.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(out)
    width, height = out.size
    radius = max(2, width // 120)
    for x, y in record['reference_points']:
        _cross(draw, x * width - 0.5, y * height - 0.5, 2 * radius, (40, 80, 255))
    for x, y in record['points']:
        u, v = x * width - 0.5, y * height - 0.5
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=(230, 20, 20),
                     outline=(255, 255, 255))
    return out


def contact_sheet(out: pathlib.Path, records: List[Dict], path, count: int = 12,
                  columns: int = 3, cell: int = 420) -> None:
    """Save a grid of annotated samples with their instructions (masks read from disk)."""
    chosen = records[:: max(1, len(records) // count)][:count]
    if not chosen:
        return
    rows = (len(chosen) + columns - 1) // columns
    text_height = 46
    cell_height = round(cell * chosen[0]['height'] / chosen[0]['width']) + text_height
    sheet = Image.new('RGB', (columns * cell, rows * cell_height), 'white')
    for i, record in enumerate(chosen):
        image = Image.open(out / record['image'])
        mask = None
        if record.get('mask'):
            mask = np.array(Image.open(out / record['mask']).convert('L')) >= 128
        tile = annotate(image, mask, record)
        tile = tile.resize((cell, cell_height - text_height), Image.BILINEAR)
        x, y = (i % columns) * cell, (i // columns) * cell_height
        sheet.paste(tile, (x, y + text_height))
        label = f'[{record["relation"]}] {record["instruction"]}'
        ImageDraw.Draw(sheet).multiline_text(
            (x + 4, y + 2), '\n'.join(textwrap.wrap(label, cell // 6)[:3]), fill=(0, 0, 0))
    sheet.save(path, quality=90)


def write_report(out, records: List[Dict], counters: Dict[str, int],
                 run: Optional[Dict] = None) -> Dict:
    """Write stats.json, stats.png and contact_sheet.jpg under ``out``; return the stats."""
    out = pathlib.Path(out)
    stats = statistics(records, counters)
    if any(r['kind'] == 'placement' for r in records):
        plot_statistics(stats, records, out / 'stats.png')
        contact_sheet(out, [r for r in records if r['kind'] == 'placement'],
                      out / 'contact_sheet.jpg')
    stats['run'] = run or {}
    stats['bytes'] = folder_bytes(out)
    (out / 'stats.json').write_text(json.dumps(stats, indent=1))
    return stats
