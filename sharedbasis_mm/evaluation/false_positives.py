"""False positives per image against the occlusion ratio (Tied Block
Convolution, Figure 7c).

A detection counts when its score is at least ``score_thr``. Going through
an image's counted detections by decreasing score, each is matched to the
unmatched non-crowd ground-truth instance of its class with the highest
IoU, if that IoU is at least ``iou_thr``; a detection left unmatched is a
false positive, unless it lies on a crowd region of its class (the
intersection over the detection's area at least ``iou_thr``, as COCOeval
ignores such detections). The IoU is pycocotools' on the boxes, the one
COCOeval uses.

The images are binned by the occlusion ratio of
:mod:`sharedbasis_mm.evaluation.occlusion` (:func:`compute_occlusion` and
:func:`occlusion_bins` at image level, the bins of the occlusion metric);
a bin's value is its false positives divided by its images.
"""
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO

from ..utils.validation import check_number
from .occlusion import OcclusionBin


@dataclass
class Detections:
    """One image's detections, boxes as COCO's ``[x, y, w, h]``.

    Attributes:
        boxes (np.ndarray): ``(D, 4)`` float boxes ``[x, y, w, h]``.
        scores (np.ndarray): ``(D,)`` scores.
        category_ids (np.ndarray): ``(D,)`` COCO category ids.
    """
    boxes: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray

    @classmethod
    def empty(cls) -> 'Detections':
        """No detection."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` boxes (mmdet's) as ``[x, y, w, h]`` (COCO's)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


def _numpy(value) -> np.ndarray:
    """A tensor (CPU) or array-like as a numpy array."""
    return np.asarray(value.numpy() if hasattr(value, 'numpy') else value)


def results_to_detections(results: Sequence[dict],
                          category_ids: Sequence[int]
                          ) -> Dict[int, Detections]:
    """The detections of mmdet's ``tools/test.py --out`` pickle
    (``DumpDetResults``: per image a dict with ``img_id`` and
    ``pred_instances`` of ``bboxes`` ``[x1, y1, x2, y2]``, ``scores`` and
    ``labels``), by image id.

    Args:
        results (Sequence[dict]): The loaded pickle.
        category_ids (Sequence[int]): The category id of each label, as
            mmdet's CocoDataset maps them (the annotation file's categories
            in order, for a data set of all its classes).

    Raises:
        ValueError: an entry is not such a dict, or a label has no category.
    """
    detections = {}
    for index, result in enumerate(results):
        if not (isinstance(result, dict) and 'img_id' in result
                and isinstance(result.get('pred_instances'), dict)):
            keys = (f' with keys {list(result)}'
                    if isinstance(result, dict) else '')
            raise ValueError(
                f'result {index} is not a detection result of mmdet\'s '
                'tools/test.py --out (a dict with img_id and pred_instances); '
                f'got {type(result).__name__}{keys}')
        instances = result['pred_instances']
        labels = _numpy(instances['labels']).astype(np.int64).reshape(-1)
        bad = labels[(labels < 0) | (labels >= len(category_ids))]
        if len(bad):
            raise ValueError(
                f'result {index} (image {result["img_id"]}) has label '
                f'{bad[0]}; expected labels 0 to {len(category_ids) - 1}, '
                f'one per category of the annotation file')
        detections[int(result['img_id'])] = Detections(
            xyxy_to_xywh(_numpy(instances['bboxes'])),
            _numpy(instances['scores']).astype(np.float64).reshape(-1),
            np.asarray(category_ids)[labels])
    return detections


def false_positive_mask(annotations: Sequence[dict], detections: Detections,
                        iou_thr: float = 0.5,
                        score_thr: float = 0.3) -> np.ndarray:
    """Which detections of one image are false positives (see the module
    docstring).

    Args:
        annotations (Sequence[dict]): The image's COCO annotations
            (``bbox``, ``category_id``, optional ``iscrowd``).
        detections (Detections): The image's detections.
        iou_thr (float): IoU for a match. Defaults to 0.5.
        score_thr (float): Lowest score counted. Defaults to 0.3.

    Returns:
        np.ndarray: ``(D,)`` bool, True for the false positives (False for
        the detections below ``score_thr``).
    """
    iou_thr = check_number('iou_thr', iou_thr, min_value=0, max_value=1,
                           min_inclusive=False)
    check_number('score_thr', score_thr)
    is_false = np.zeros(len(detections.scores), dtype=bool)
    counted = np.flatnonzero(detections.scores >= score_thr)
    if not len(counted) or not len(annotations):
        is_false[counted] = True
        return is_false
    counted = counted[np.argsort(-detections.scores[counted],
                                 kind='stable')]
    gt_boxes = np.asarray([a['bbox'] for a in annotations],
                          dtype=np.float64).reshape(-1, 4)
    gt_classes = np.asarray([a['category_id'] for a in annotations])
    crowd = np.asarray([bool(a.get('iscrowd', 0)) for a in annotations])
    # (D, G); for a crowd region: intersection over the detection's area
    overlaps = np.asarray(mask_util.iou(
        detections.boxes[counted].tolist(), gt_boxes.tolist(),
        crowd.astype(np.uint8).tolist())).reshape(len(counted), -1)
    matched = np.zeros(len(annotations), dtype=bool)
    for row, index in enumerate(counted):
        same_class = gt_classes == detections.category_ids[index]
        candidates = same_class & ~crowd & ~matched
        if candidates.any():
            best = np.flatnonzero(candidates)[np.argmax(
                overlaps[row, candidates])]
            if overlaps[row, best] >= iou_thr:
                matched[best] = True
                continue
        on_crowd = same_class & crowd
        if on_crowd.any() and overlaps[row, on_crowd].max() >= iou_thr:
            continue
        is_false[index] = True
    return is_false


def image_false_positives(coco: Union[COCO, dict],
                          detections: Mapping[int, Detections],
                          iou_thr: float = 0.5,
                          score_thr: float = 0.3) -> Dict[int, np.ndarray]:
    """:func:`false_positive_mask` of every image of the data set.

    Args:
        coco (COCO | dict): The ground truth.
        detections (Mapping[int, Detections]): Image id to detections; an
            image without an entry has none.
        iou_thr (float): IoU for a match. Defaults to 0.5.
        score_thr (float): Lowest score counted. Defaults to 0.3.

    Returns:
        dict[int, np.ndarray]: Image id to its false-positive mask.
    """
    dataset = coco.dataset if isinstance(coco, COCO) else coco
    unknown = sorted(set(detections) - {img['id']
                                        for img in dataset['images']})
    if unknown:
        raise ValueError(f'detections of images {unknown[:5]} that are not '
                         'in the annotation file')
    image_anns: Dict[int, List[dict]] = {
        img['id']: [] for img in dataset['images']
    }
    for ann in dataset.get('annotations', []):
        image_anns[ann['image_id']].append(ann)
    return {
        img_id: false_positive_mask(anns,
                                    detections.get(img_id,
                                                   Detections.empty()),
                                    iou_thr, score_thr)
        for img_id, anns in image_anns.items()
    }


def false_positives_per_bin(false_positives: Mapping[int, np.ndarray],
                            bins: Sequence[OcclusionBin]) -> List[dict]:
    """The false positives of each occlusion bin.

    Args:
        false_positives (Mapping[int, np.ndarray]): Image id to its
            false-positive mask (:func:`image_false_positives`).
        bins (Sequence[OcclusionBin]): Image-level occlusion bins.

    Returns:
        list[dict]: Per bin, ``bin`` (its label), ``num_images``,
        ``false_positives`` (their total) and ``per_image`` (None for a
        bin without images).
    """
    rows = []
    for occlusion_bin in bins:
        total = int(sum(false_positives[img_id].sum()
                        for img_id in occlusion_bin.img_ids))
        num_images = len(occlusion_bin.img_ids)
        rows.append(dict(
            bin=occlusion_bin.label,
            num_images=num_images,
            false_positives=total,
            per_image=total / num_images if num_images else None))
    return rows
