"""A deterministic synthetic COCO-style detection set with occlusion.

Each image shows a few textured shapes (the classes) of varied size, colour
and texture on a cluttered background. Shapes drawn later occlude earlier
ones; every instance is annotated by its visible part, as COCO does: a
polygon segmentation, the box of the visible part and its pixel area.

The occlusion of an image is controlled: for each image a target ratio is
drawn in ``occlusion_range`` and layouts are drawn until the image's
occlusion ratio (eq. 5 of Tied Block Convolution on the instances' boxes, computed by
:func:`sharedbasis_mm.evaluation.occlusion.image_overlaps`) lies in the
range. Every image is a pure function of ``(seed, split, index)``.

A file generator for the tools and the tests (its command line:
``make_synthetic_coco.py``), imported with ``tools/`` on ``sys.path`` as
``dataset_converters.synthetic_coco``.
"""
import os
import os.path as osp
from functools import partial
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from sharedbasis_mm.evaluation.occlusion import image_overlaps

CLASSES = ('circle', 'triangle', 'rectangle', 'star')
SPLITS = ('train', 'val', 'test')
TEXTURES = ('solid', 'stripes', 'checker', 'gradient')


def _shape_polygon(rng: np.random.Generator, shape: str, center: np.ndarray,
                   size: float) -> Optional[np.ndarray]:
    """Outline of a shape of radius ``size`` (None for a circle)."""
    angle = rng.uniform(0, 2 * np.pi)
    if shape == 'circle':
        return None
    if shape == 'triangle':
        angles = angle + np.array([0, 2, 4]) * np.pi / 3
        radii = np.full(3, size)
    elif shape == 'rectangle':
        aspect = rng.uniform(0.45, 0.8)
        half = np.arctan(aspect)
        angles = angle + np.array([half, np.pi - half, np.pi + half,
                                   -half])
        radii = np.full(4, size)
    else:
        angles = angle + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, size, size * 0.45)
    return center + np.stack([radii * np.cos(angles),
                              radii * np.sin(angles)], axis=1)


def _shape_mask(rng: np.random.Generator, shape: str, center: np.ndarray,
                size: float, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    polygon = _shape_polygon(rng, shape, center, size)
    if polygon is None:
        cv2.circle(mask, tuple(int(round(c)) for c in center),
                   int(round(size * 0.85)), 1, thickness=-1)
    else:
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask.astype(bool)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _texture(rng: np.random.Generator, height: int,
             width: int) -> np.ndarray:
    """An ``(H, W, 3)`` float texture: solid, stripes, checker or gradient."""
    first, second = _colour(rng), _colour(rng)
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    if kind == 'solid':
        return np.broadcast_to(first, (height, width, 3))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = xs * np.cos(angle) + ys * np.sin(angle)
    period = rng.uniform(4, 10)
    if kind == 'stripes':
        weight = (np.floor(u / period) % 2)[..., None]
    elif kind == 'checker':
        v = -xs * np.sin(angle) + ys * np.cos(angle)
        weight = ((np.floor(u / period) + np.floor(v / period)) % 2)[...,
                                                                     None]
    else:
        weight = ((u - u.min()) / max(np.ptp(u), 1.0))[..., None]
    return first * (1 - weight) + second * weight


def _background(rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    """A noisy background cluttered with thin lines and small blobs."""
    image = np.broadcast_to(_colour(rng) * 0.6 + 50,
                            (height, width, 3)).copy()
    for _ in range(rng.integers(6, 14)):
        p1 = tuple(int(v) for v in rng.integers(0, (width, height)))
        p2 = tuple(int(v) for v in rng.integers(0, (width, height)))
        cv2.line(image, p1, p2, _colour(rng).tolist(), 1)
    for _ in range(rng.integers(3, 8)):
        center = tuple(int(v) for v in rng.integers(0, (width, height)))
        axes = tuple(int(v) for v in rng.integers(1, 4, size=2))
        cv2.ellipse(image, center, axes, 0, 0, 360, _colour(rng).tolist(),
                    -1)
    image += rng.normal(0, 8, size=image.shape)
    return image


def _layout(rng: np.random.Generator, target: float, num_objects: int,
            size_range: Tuple[float, float], height: int,
            width: int) -> List[Tuple[np.ndarray, float]]:
    """Centres and radii; the higher ``target``, the closer the objects."""
    objects: List[Tuple[np.ndarray, float]] = []
    for _ in range(num_objects):
        size = rng.uniform(*size_range)
        if objects and rng.random() < min(1.0, 0.25 + 1.5 * target):
            anchor, anchor_size = objects[rng.integers(len(objects))]
            distance = (1 - target) * (size + anchor_size) * rng.uniform(
                0.3, 1.1)
            direction = rng.uniform(0, 2 * np.pi)
            center = anchor + distance * np.array(
                [np.cos(direction), np.sin(direction)])
        else:
            center = rng.uniform((0, 0), (width, height))
        objects.append((np.clip(center, size * 0.5,
                                (width - size * 0.5, height - size * 0.5)),
                        size))
    return objects


def _visible_parts(masks: List[np.ndarray], min_visible: float
                   ) -> Tuple[List[int], List[np.ndarray]]:
    """Indices and visible parts of the shapes left in the image.

    Later shapes hide earlier ones. A shape whose visible fraction is below
    ``min_visible``, or whose visible part has no polygon, is removed, and
    the visible parts are computed again without it.
    """
    kept = [i for i, mask in enumerate(masks) if mask.any()]
    while True:
        covered = np.zeros_like(masks[0])
        visible = {}
        for i in reversed(kept):
            visible[i] = masks[i] & ~covered
            covered |= masks[i]
        hidden = [
            i for i in kept if visible[i].sum() < min_visible *
            masks[i].sum() or not _mask_polygons(visible[i])
        ]
        if not hidden:
            return kept, [visible[i] for i in kept]
        kept = [i for i in kept if i not in hidden]


def _mask_polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [
        contour.reshape(-1).astype(float).tolist() for contour in contours
        if len(contour) >= 3
    ]


def _mask_box(mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1)
    ]


def box_occlusion_ratio(boxes: Sequence[Sequence[float]], height: int,
                        width: int) -> float:
    """Eq. 5 of Tied Block Convolution on the boxes of one image's instances."""
    anns = [dict(bbox=list(box)) for box in boxes]
    areas, overlaps = image_overlaps(anns, height, width)
    return float(overlaps.sum() / areas.sum()) if areas.sum() else 0.0


def synthetic_image(seed: int,
                    split: str,
                    index: int,
                    image_size: Tuple[int, int] = (128, 128),
                    occlusion_range: Tuple[float, float] = (0.0, 0.6),
                    num_objects: Tuple[int, int] = (1, 6),
                    size_range: Tuple[float, float] = (12.0, 36.0),
                    min_visible: float = 0.3,
                    max_attempts: int = 60) -> Tuple[np.ndarray, List[Dict],
                                                     float]:
    """One image with its instances, a pure function of its arguments.

    Args:
        seed (int): Seed of the data set.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        index (int): Index of the image in its split.
        image_size (tuple[int, int]): ``(height, width)``.
        occlusion_range (tuple[float, float]): Range of the image's
            occlusion ratio (on the instances' boxes).
        num_objects (tuple[int, int]): Least and most shapes drawn.
        size_range (tuple[float, float]): Radius range of the shapes.
        min_visible (float): Least visible fraction of a shape; a shape more
            hidden than that is left out of the image.
        max_attempts (int): Layouts tried before raising an error.

    Returns:
        tuple: The ``(H, W, 3)`` uint8 BGR image, its instances (dicts with
        ``category``, ``bbox``, ``segmentation``, ``area``) and its
        occlusion ratio.
    """
    height, width = image_size
    low, high = occlusion_range
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    target = rng.uniform(low, high)
    count = int(rng.integers(num_objects[0], num_objects[1] + 1))
    if low > 0:
        count = max(count, 2)
    for _ in range(max_attempts):
        layout = _layout(rng, target, count, size_range, height, width)
        shapes = [CLASSES[rng.integers(len(CLASSES))] for _ in layout]
        masks = [
            _shape_mask(rng, shape, center, size, height, width)
            for shape, (center, size) in zip(shapes, layout)
        ]
        kept, visible = _visible_parts(masks, min_visible)
        boxes = [_mask_box(mask) for mask in visible]
        ratio = box_occlusion_ratio(boxes, height, width)
        if kept and low <= ratio <= high:
            break
        target = rng.uniform(low, high)
    else:
        raise RuntimeError(
            f'no layout of image {index} of split {split!r} reached an '
            f'occlusion ratio in occlusion_range={occlusion_range} in '
            f'{max_attempts} attempts; widen the range')
    image = _background(rng, height, width)
    for i in kept:
        image[masks[i]] = _texture(rng, height, width)[masks[i]]
    instances = [
        dict(
            category=shapes[i],
            bbox=box,
            segmentation=_mask_polygons(mask),
            area=float(mask.sum()))
        for i, box, mask in zip(kept, boxes, visible)
    ]
    return np.clip(image, 0, 255).astype(np.uint8), instances, ratio


def _write_image(index: int, out_dir: str, split: str, seed: int,
                 image_kwargs: Dict) -> Tuple[str, Tuple[int, int], List[Dict],
                                              float]:
    """Draw image ``index`` of a split, write it and return its record."""
    image, instances, ratio = synthetic_image(seed, split, index,
                                              **image_kwargs)
    file_name = f'{split}/{index:06d}.png'
    cv2.imwrite(osp.join(out_dir, file_name), image)
    return file_name, image.shape[:2], instances, ratio


def make_synthetic_coco(out_dir: str,
                        split: str,
                        num_images: int,
                        seed: int = 0,
                        num_workers: int = 0,
                        **image_kwargs) -> Dict:
    """Write a split's images and return its COCO annotation dict.

    Images go to ``out_dir/<split>/<index>.png``; the returned dict holds
    ``images`` (with ``file_name`` relative to ``out_dir`` and the box
    ``occlusion_ratio`` the image was drawn for), ``annotations`` and
    ``categories``. Keyword arguments go to :func:`synthetic_image`.
    ``num_workers > 0`` draws the images in that many processes; the result
    is the same, as every image is a pure function of its index.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got split='
                         f'{split!r}')
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0 (0: draw in this '
                         f'process), got num_workers={num_workers}')
    least, most = image_kwargs.get('num_objects', (1, 1))
    if not 1 <= least <= most:
        raise ValueError('num_objects must be (least, most) with 1 <= least '
                         f'<= most, got num_objects=({least}, {most})')
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(CLASSES)
    ]
    write = partial(
        _write_image,
        out_dir=out_dir,
        split=split,
        seed=seed,
        image_kwargs=image_kwargs)
    if num_workers > 0:
        with Pool(num_workers) as pool:
            records = pool.map(write, range(num_images))
    else:
        records = map(write, range(num_images))
    images, annotations = [], []
    for index, (file_name, (height, width), instances,
                ratio) in enumerate(records):
        images.append(
            dict(
                id=index + 1,
                file_name=file_name,
                height=height,
                width=width,
                occlusion_ratio=ratio))
        for instance in instances:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=index + 1,
                    category_id=CLASSES.index(instance['category']) + 1,
                    bbox=instance['bbox'],
                    segmentation=instance['segmentation'],
                    area=instance['area'],
                    iscrowd=0))
    return dict(images=images, annotations=annotations, categories=categories)
