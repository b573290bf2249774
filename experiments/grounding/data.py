"""
Grounding data: sim renders resized to the model's square input, dense per-patch targets.

Images are resized to ``size`` x ``size`` like the LLaVA processor does (no crop; bicubic for
RGB, nearest for labels), so normalized coordinates stay those of the original render edge to
edge. Per-patch targets come from the label image: the fraction of each segmentation class
(background, table, robot, one class per object category) and of each object colour in the
patch, the patch's row and column, and the offset from the patch centre to the visible-pixel
centroid of the object covering most of the patch.
"""

import dataclasses

import numpy as np
from PIL import Image
import torch
from trace_ros.sim.objects import ALL_COLOURS, CATEGORIES

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
CLASS_NAMES = ('background', 'table', 'robot') + CATEGORIES
NUM_CLASSES = len(CLASS_NAMES)  # 10
COLOUR_NAMES = tuple(ALL_COLOURS) + ('none',)
NUM_COLOURS = len(COLOUR_NAMES)  # 16 (randomized worlds name 4 more), last = not an object
FIRST_OBJECT = 3


@dataclasses.dataclass
class GroundingSet:
    """Resized images (N, S, S, 3) uint8, labels (N, S, S) uint8 and object attributes."""

    rgb: np.ndarray
    labels: np.ndarray
    category: np.ndarray
    colour: np.ndarray
    blank_rgb: np.ndarray | None = None

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.rgb)


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize one HxWx3 uint8 image to size x size (bicubic, as CLIPImageProcessorPil)."""
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Resize one HxW label image to size x size (nearest)."""
    return np.asarray(Image.fromarray(labels).resize((size, size), Image.NEAREST))


def load_set(path: str, size: int, limit: int | None = None) -> GroundingSet:
    """Load a rendered .npz (see render.py) resized to the model's square input."""
    data = np.load(path)
    n = len(data['rgb']) if limit is None else min(limit, len(data['rgb']))
    blank = None
    if 'blank_rgb' in data:
        blank = np.stack([resize_rgb(x, size) for x in data['blank_rgb'][:n]])
    return GroundingSet(
        rgb=np.stack([resize_rgb(x, size) for x in data['rgb'][:n]]),
        labels=np.stack([resize_labels(x, size) for x in data['labels'][:n]]),
        category=data['category'][:n].astype(np.int64),
        colour=data['colour'][:n].astype(np.int64), blank_rgb=blank)


def pixel_values(rgb: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float CLIP-normalized (rescale 1/255, mean/std)."""
    x = (rgb.astype(np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def class_map(labels: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Per-pixel class (background/table/robot/category) of one label image."""
    lut = np.arange(256)
    lut[FIRST_OBJECT:FIRST_OBJECT + len(category)] = np.where(
        category >= 0, FIRST_OBJECT + category, 0)
    return lut[labels]


def colour_map(labels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per-pixel colour index of one label image (NUM_COLOURS - 1 where not an object)."""
    lut = np.full(256, NUM_COLOURS - 1)
    lut[FIRST_OBJECT:FIRST_OBJECT + len(colour)] = np.where(colour >= 0, colour,
                                                            NUM_COLOURS - 1)
    return lut[labels]


def object_centroids(labels: np.ndarray) -> dict:
    """Visible-pixel centroid (u, v in pixels) and pixel count of every object label."""
    out = {}
    for label in np.unique(labels):
        if label >= FIRST_OBJECT:
            v, u = np.nonzero(labels == label)
            out[int(label)] = (u.mean(), v.mean(), len(u))
    return out


def dense_targets(labels: np.ndarray, category: np.ndarray, colour: np.ndarray,
                  patch: int) -> dict:
    """
    Per-patch targets of one S x S label image, for a G x G patch grid (G = S // patch).

    Returns ``cls`` (G*G, NUM_CLASSES) and ``col`` (G*G, NUM_COLOURS) pixel fractions, ``row``
    and ``column`` (G*G,) indices, ``offset`` (G*G, 2) from the patch centre to the centroid
    of the patch's main object in patch units and ``has_object`` (G*G,) bool.
    """
    size = labels.shape[0]
    grid = size // patch

    def blocks(a):
        return a[:grid * patch, :grid * patch].reshape(grid, patch, grid, patch).transpose(
            0, 2, 1, 3).reshape(grid * grid, patch * patch)

    cls = blocks(class_map(labels, category))
    col = blocks(colour_map(labels, colour))
    lab = blocks(labels)
    cls_frac = np.stack([(cls == k).mean(1) for k in range(NUM_CLASSES)], 1)
    col_frac = np.stack([(col == k).mean(1) for k in range(NUM_COLOURS)], 1)
    rows, columns = np.divmod(np.arange(grid * grid), grid)
    centres = object_centroids(labels)
    offset = np.zeros((grid * grid, 2), np.float32)
    has_object = np.zeros(grid * grid, bool)
    for p in range(grid * grid):
        obj = lab[p][lab[p] >= FIRST_OBJECT]
        if len(obj):
            main = np.bincount(obj).argmax()
            u, v, _ = centres[int(main)]
            offset[p] = ((u + 0.5) / patch - (columns[p] + 0.5),
                         (v + 0.5) / patch - (rows[p] + 0.5))
            has_object[p] = True
    return {'cls': cls_frac.astype(np.float32), 'col': col_frac.astype(np.float32),
            'row': rows, 'column': columns, 'offset': offset, 'has_object': has_object}


def flip(rgb: np.ndarray, labels: np.ndarray) -> tuple:
    """Mirror image and labels left-right (the scene is symmetric about the camera axis)."""
    return rgb[:, ::-1].copy(), labels[:, ::-1].copy()


def batch_targets(labels: np.ndarray, category: np.ndarray, colour: np.ndarray,
                  patch: int) -> dict:
    """Stack dense_targets of a batch into tensors."""
    items = [dense_targets(lab, cat, col, patch)
             for lab, cat, col in zip(labels, category, colour)]
    return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
