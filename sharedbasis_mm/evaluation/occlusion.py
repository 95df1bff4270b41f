"""Occlusion ratios of COCO-style ground truth (TBC paper, eq. 5 and Fig. 7).

Counting, for one image:

* The instances are its non-crowd annotations. Crowd annotations
  (``iscrowd=1``) are left out entirely: they are no instance and occlude
  none, so they add to neither the numerator nor the denominator.
* Each instance is a set of pixels ``A_i`` of the image grid: the mask
  pycocotools makes of its segmentation (polygons, compressed or
  uncompressed RLE), the very mask ``COCOeval`` uses, or, when the
  annotation has no segmentation, its box rasterized by pycocotools as the
  polygon of its four corners (an integer box ``[x, y, w, h]`` covers
  ``w * h`` pixels). Polygons with fewer than three points are skipped.
  With ``instance_shape='box'`` every instance is its box, segmentation or
  not. COCO's masks (and the synthetic set's) are the VISIBLE parts of the
  instances, which barely overlap, so on them the mask-based ratio is close
  to 0 everywhere: to measure occlusion as Figure 7 of Tied Block Convolution does on
  COCO, use the boxes.
* The overlap of instance ``i`` is the part of it covered by at least one
  OTHER instance, ``O_i = A_i ∩ (∪_{j≠i} A_j)``.
* The image's occlusion ratio is ``r = Σ_i |O_i| / Σ_i |A_i|`` and the
  occluded fraction of instance ``i`` is ``|O_i| / |A_i|``; both lie in
  [0, 1].

So a pixel covered by ``k >= 2`` instances adds ``k`` to both the total
overlap area and the total instance area, and a pixel covered by one
instance adds 1 to the total instance area only. Three instances over the
same pixel therefore count it three times in the overlap, once for each. An
image without any non-crowd instance (no annotation, or crowd only) has no
ratio (NaN), and so has an instance whose rasterized area is zero.

The masks are never decoded: the areas are computed on pycocotools'
run-length encoding, in one pass over an image's instances that keeps the
union ``U`` of those seen so far and the pixels ``D`` covered at least twice
(``D <- D | (U & A_i)``, ``U <- U | A_i``); then ``|O_i| = |A_i & D|``, four
RLE merges per instance.
"""
import math
from dataclasses import dataclass, field
from typing import (Dict, Iterable, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO

from ..utils.validation import check_choice, check_number, load_json_file

DEFAULT_BIN_EDGES = tuple(i / 10 for i in range(11))
OCCLUSION_LEVELS = ('image', 'instance')
INSTANCE_SHAPES = ('auto', 'box')


COCO_ANNOTATION_FILE = 'COCO annotation file'


def check_instance_shape(instance_shape: str) -> str:
    """Return ``instance_shape``; raise unless it is 'auto' or 'box'."""
    return check_choice('instance_shape', instance_shape, INSTANCE_SHAPES)


def load_coco_annotations(path: str,
                          required_keys: Sequence[str] = ('images', )
                          ) -> dict:
    """Read a COCO annotation file, with an error naming the file when it
    is empty, not JSON, a results list or without ``required_keys``."""
    return load_json_file(path, COCO_ANNOTATION_FILE, required_keys)


@dataclass
class OcclusionRatios:
    """Occlusion of every image and instance of a COCO data set.

    Attributes:
        image_ratios (dict[int, float]): Image id to occlusion ratio ``r``,
            NaN for an image without non-crowd instance.
        instance_fractions (dict[int, float]): Annotation id of every
            non-crowd instance to its occluded fraction, NaN when its
            rasterized area is zero.
        image_instances (dict[int, list[int]]): Image id to the annotation
            ids of its non-crowd instances.
        num_box_instances (int): Instances rasterized from their box because
            they have no segmentation.
    """
    image_ratios: Dict[int, float] = field(default_factory=dict)
    instance_fractions: Dict[int, float] = field(default_factory=dict)
    image_instances: Dict[int, List[int]] = field(default_factory=dict)
    num_box_instances: int = 0


@dataclass
class OcclusionBin:
    """The images and instances whose occlusion falls in ``[low, high)``.

    Attributes:
        low (float): Lower edge, included.
        high (float): Upper edge, included for the last bin only.
        img_ids (list[int]): The images the bin evaluates, sorted.
        ann_ids (list[int]): The non-crowd instances the bin evaluates;
            those of ``img_ids`` that are not listed are to be ignored.
    """
    low: float
    high: float
    img_ids: List[int] = field(default_factory=list)
    ann_ids: List[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The bin as ``'low-high'``, e.g. ``'0.2-0.3'``."""
        return bin_label(self.low, self.high)


def bin_label(low: float, high: float) -> str:
    """Name a bin ``'low-high'`` in the shortest plain decimals that tell
    the edges apart (``'0-0.1'``)."""
    return (f"{np.format_float_positional(low, trim='-')}-"
            f"{np.format_float_positional(high, trim='-')}")


def check_bin_edges(bin_edges: Sequence[float]) -> Tuple[float, ...]:
    """Return the edges as floats, or raise unless they are at least two
    strictly increasing numbers in [0, 1]."""
    if isinstance(bin_edges, (str, bytes, dict)) or not isinstance(
            bin_edges, Iterable):
        raise TypeError('bin_edges must be a sequence of numbers in [0, 1], '
                        f'got bin_edges={bin_edges!r}')
    edges = tuple(
        check_number(f'bin_edges[{i}]', edge, min_value=0, max_value=1)
        for i, edge in enumerate(bin_edges))
    increasing = all(a < b for a, b in zip(edges[:-1], edges[1:]))
    if len(edges) < 2 or not increasing:
        raise ValueError('bin_edges must be at least two strictly increasing '
                         f'numbers in [0, 1], got bin_edges={bin_edges!r}')
    return edges


def instance_rle(ann: dict,
                 height: int,
                 width: int,
                 instance_shape: str = 'auto') -> Optional[dict]:
    """The instance's mask as pycocotools encodes it (``COCO.annToRLE``).

    With ``instance_shape='auto'`` the segmentation is used when there is
    one, else the box (see the module docstring); with ``'box'`` the box
    always is.

    Args:
        ann (dict): COCO annotation with ``bbox`` and, optionally,
            ``segmentation``.
        height (int): Image height.
        width (int): Image width.
        instance_shape (str): ``'auto'`` or ``'box'``. Defaults to
            ``'auto'``.

    Returns:
        dict | None: Compressed RLE, None when the instance has no pixel
        for certain (no polygon of three points, or an empty box).
    """
    segmentation = ann.get('segmentation') if instance_shape == 'auto' else None
    if isinstance(segmentation, dict):
        if tuple(segmentation['size']) != (height, width):
            raise ValueError(
                f"annotation {ann.get('id')}: RLE of size "
                f"{segmentation['size']} on an image of size "
                f'({height}, {width})')
        if isinstance(segmentation['counts'], list):
            return mask_util.frPyObjects(segmentation, height, width)
        return segmentation
    if segmentation:
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return None
        return mask_util.merge(
            mask_util.frPyObjects(polygons, height, width))
    box = np.asarray(ann['bbox'], dtype=np.float64)
    if box[2] <= 0 or box[3] <= 0:
        return None
    return mask_util.frPyObjects(box[None], height, width)[0]


def has_segmentation(ann: dict) -> bool:
    """Whether an annotation carries a non-empty segmentation."""
    return bool(ann.get('segmentation'))


def _covered_twice(rles: Sequence[dict]) -> Optional[dict]:
    """RLE of the pixels covered by at least two of ``rles`` (None for
    fewer than two), in one pass: ``D <- D | (U & A)``, ``U <- U | A``."""
    union, twice = rles[0], None
    for rle in rles[1:]:
        both = mask_util.merge([union, rle], intersect=True)
        twice = both if twice is None else mask_util.merge([twice, both])
        union = mask_util.merge([union, rle])
    return twice


def image_overlaps(anns: Sequence[dict],
                   height: int,
                   width: int,
                   instance_shape: str = 'auto'
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Areas ``|A_i|`` and overlaps ``|O_i|`` of one image's instances.

    Args:
        anns (Sequence[dict]): The image's non-crowd annotations.
        height (int): Image height.
        width (int): Image width.
        instance_shape (str): ``'auto'`` or ``'box'`` (see
            :func:`instance_rle`). Defaults to ``'auto'``.

    Returns:
        tuple[np.ndarray, np.ndarray]: Pixel areas and overlapped areas
        (int64, one value per annotation, in order).
    """
    rles = [instance_rle(ann, height, width, instance_shape) for ann in anns]
    areas = np.zeros(len(rles), dtype=np.int64)
    overlaps = np.zeros(len(rles), dtype=np.int64)
    present = [i for i, rle in enumerate(rles) if rle is not None]
    if not present:
        return areas, overlaps
    areas[present] = mask_util.area([rles[i] for i in present])
    twice = _covered_twice([rles[i] for i in present])
    if twice is not None:
        overlaps[present] = mask_util.area([
            mask_util.merge([rles[i], twice], intersect=True)
            for i in present
        ])
    return areas, overlaps


def _dataset(coco: Union[COCO, dict]) -> dict:
    return coco.dataset if isinstance(coco, COCO) else coco


def compute_occlusion(coco: Union[COCO, dict],
                      instance_shape: str = 'auto') -> OcclusionRatios:
    """Occlusion ratio of every image and occluded fraction of every
    non-crowd instance.

    Args:
        coco (COCO | dict): pycocotools COCO object or the raw COCO dict
            (``images`` with ``height`` and ``width``; ``annotations``).
        instance_shape (str): ``'auto'`` (segmentation when present, else
            box) or ``'box'`` (always the box). Defaults to ``'auto'``.

    Returns:
        OcclusionRatios: Ratios, fractions and the instances of each image.
    """
    check_instance_shape(instance_shape)
    dataset = _dataset(coco)
    images = {img['id']: img for img in dataset['images']}
    image_anns: Dict[int, List[dict]] = {img_id: [] for img_id in images}
    for ann in dataset.get('annotations', []):
        if ann['image_id'] not in image_anns:
            raise ValueError(f"annotation {ann['id']} refers to image "
                             f"{ann['image_id']}, which is not in images")
        if not ann.get('iscrowd', 0):
            image_anns[ann['image_id']].append(ann)

    ratios = OcclusionRatios()
    for img_id, anns in image_anns.items():
        img = images[img_id]
        if 'height' not in img or 'width' not in img:
            raise ValueError(f'image {img_id} needs height and width to '
                             'rasterize its instances')
        areas, overlaps = image_overlaps(anns, img['height'], img['width'],
                                         instance_shape)
        total = areas.sum()
        ratios.image_ratios[img_id] = (
            float(overlaps.sum() / total) if total else math.nan)
        ratios.image_instances[img_id] = [ann['id'] for ann in anns]
        for ann, area, overlap in zip(anns, areas, overlaps):
            ratios.instance_fractions[ann['id']] = (
                float(overlap / area) if area else math.nan)
        ratios.num_box_instances += sum(not has_segmentation(a) for a in anns)
    return ratios


def _bin_index(value: float, edges: Sequence[float]) -> Optional[int]:
    """Index of the bin ``[e_k, e_k+1)`` (last bin closed) holding
    ``value``, or None for NaN and values outside the edges."""
    if not edges[0] <= value <= edges[-1]:
        return None
    return min(int(np.searchsorted(edges, value, side='right')) - 1,
               len(edges) - 2)


def occlusion_bins(ratios: OcclusionRatios,
                   bin_edges: Sequence[float] = DEFAULT_BIN_EDGES,
                   level: str = 'image') -> List[OcclusionBin]:
    """Split the data set into occlusion bins.

    With ``level='image'`` an image goes to the bin of its ratio ``r`` with
    all its instances. With ``level='instance'`` an instance goes to the bin
    of its occluded fraction; the bin evaluates every image holding one of
    its instances, and the other instances of those images are to be ignored
    (see :func:`subset_dataset`). Images or instances without a value (NaN)
    or outside the edges are in no bin.

    Args:
        ratios (OcclusionRatios): Output of :func:`compute_occlusion`.
        bin_edges (Sequence[float]): Increasing edges in [0, 1]; bin ``k`` is
            ``[e_k, e_k+1)``, the last one ``[e_n-1, e_n]``. Defaults to
            0, 0.1, ..., 1.
        level (str): ``'image'`` or ``'instance'``. Defaults to 'image'.

    Returns:
        list[OcclusionBin]: One bin per interval, empty ones included.
    """
    edges = check_bin_edges(bin_edges)
    check_choice('level', level, OCCLUSION_LEVELS)
    bins = [OcclusionBin(low, high) for low, high in zip(edges, edges[1:])]
    for img_id in sorted(ratios.image_instances):
        ann_ids = ratios.image_instances[img_id]
        if level == 'image':
            k = _bin_index(ratios.image_ratios[img_id], edges)
            if k is not None:
                bins[k].img_ids.append(img_id)
                bins[k].ann_ids.extend(ann_ids)
            continue
        for ann_id in ann_ids:
            k = _bin_index(ratios.instance_fractions[ann_id], edges)
            if k is None:
                continue
            if not bins[k].img_ids or bins[k].img_ids[-1] != img_id:
                bins[k].img_ids.append(img_id)
            bins[k].ann_ids.append(ann_id)
    return bins


def count_outside_bins(ratios: OcclusionRatios, bins: Sequence[OcclusionBin],
                       level: str = 'image') -> Tuple[int, int]:
    """How many images (``level='image'``) or instances (``'instance'``)
    with an occlusion value are in none of ``bins`` (outside their edges),
    and how many have a value.

    Returns:
        tuple[int, int]: ``(outside, rated)``.
    """
    check_choice('level', level, OCCLUSION_LEVELS)
    if level == 'image':
        values = ratios.image_ratios.values()
        binned = sum(len(occ_bin.img_ids) for occ_bin in bins)
    else:
        values = ratios.instance_fractions.values()
        binned = sum(len(occ_bin.ann_ids) for occ_bin in bins)
    rated = sum(not math.isnan(v) for v in values)
    return rated - binned, rated


def subset_dataset(coco: Union[COCO, dict],
                   occlusion_bin: OcclusionBin) -> dict:
    """The COCO dict of one occlusion bin, for any COCO evaluator.

    It keeps the bin's images, all their annotations and every other field
    of the data set (categories, info, ...). A non-crowd instance of those
    images that the bin does not evaluate (instance-level bins only) is
    turned into a crowd region (``iscrowd=1``), which is how COCO says
    "ignore": it need not be detected, and a detection covering it counts
    neither as true nor as false positive.

    Args:
        coco (COCO | dict): The whole data set.
        occlusion_bin (OcclusionBin): One of :func:`occlusion_bins`.

    Returns:
        dict: A new COCO dict (annotations not in the bin are copies; the
        others are shared with ``coco``).
    """
    dataset = _dataset(coco)
    img_ids = set(occlusion_bin.img_ids)
    evaluated = set(occlusion_bin.ann_ids)
    annotations = []
    for ann in dataset.get('annotations', []):
        if ann['image_id'] not in img_ids:
            continue
        if not ann.get('iscrowd', 0) and ann['id'] not in evaluated:
            ann = dict(ann, iscrowd=1)
        annotations.append(ann)
    subset = dict(dataset)
    subset['images'] = [
        img for img in dataset['images'] if img['id'] in img_ids
    ]
    subset['annotations'] = annotations
    return subset
