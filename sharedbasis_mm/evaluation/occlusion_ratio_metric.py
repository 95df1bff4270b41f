"""COCO detection and instance segmentation AP per occlusion ratio."""
import contextlib
import io
import math
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
from mmdet.datasets import api_wrappers
from mmdet.evaluation import CocoMetric
from mmengine.fileio import dump, load
from mmengine.logging import MMLogger
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from terminaltables import AsciiTable

from ..registry import METRICS
from ..utils.deprecation import register_deprecated_alias
from ..utils.validation import check_choice, check_json_object
from .occlusion import (COCO_ANNOTATION_FILE, DEFAULT_BIN_EDGES,
                        OCCLUSION_LEVELS, OcclusionBin, OcclusionRatios,
                        check_bin_edges, check_instance_shape,
                        compute_occlusion, count_outside_bins,
                        has_segmentation,
                        load_coco_annotations, occlusion_bins,
                        subset_dataset)

BIN_IOU_TYPES = ('bbox', 'segm')
# metric name -> its index in COCOeval.stats, as in CocoMetric
BIN_METRIC_ITEMS = (('mAP', 0), ('mAP_50', 1), ('mAP_75', 2))
# the keys a COCO annotation file needs here: CocoMetric reads the
# categories, the occlusion the images (annotations may be absent)
COCO_REQUIRED_KEYS = ('images', 'categories')


def _coco_from_dict(dataset: dict) -> COCO:
    """A pycocotools COCO object over an in-memory dict."""
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


@METRICS.register_module()
class CocoOcclusionRatioMetric(CocoMetric):
    """COCO metric with AP, AP50 and AP75 per occlusion-ratio bin.

    This is mmdet's :class:`CocoMetric` (its results over all images, under
    its own keys such as ``coco/bbox_mAP``) plus, for ``bbox`` and ``segm``
    and every occlusion bin, keys ``occ/{bbox,segm}_mAP{,_50,_75}_{bin}``
    and ``occ/num_images_{bin}``, ``occ/num_instances_{bin}``, e.g.
    ``coco/occ/bbox_mAP_75_0.2-0.3`` with the default prefix. The occlusion
    is computed from the ground truth alone (see
    :mod:`sharedbasis_mm.evaluation.occlusion`), once, and cached.

    A bin's AP, AP50 and AP75 are ``COCOeval.stats[0:3]`` of pycocotools'
    COCOeval on the COCO file that :func:`subset_dataset` (and
    ``tools/analysis_tools/occlusion_subsets.py``) writes for the bin, with
    CocoMetric's evaluation parameters (categories, IoU thresholds and
    detections per image, ``proposal_nums``: AP at 100, AP50 and AP75 at
    ``proposal_nums[2]``, 1000 by default), so a bin holding every image
    has the overall AP, AP50 and AP75 of CocoMetric; -1 where no category of
    the bin has ground truth, as in COCOeval. Only the area range 'all' is
    evaluated. A bin without images has NaN AP (and a logged warning).
    Images without a non-crowd instance and images (instances at
    ``occlusion_level='instance'``) outside the bin edges are in no bin,
    and their number is logged as a warning.

    Args:
        bin_edges (Sequence[float]): Increasing edges in [0, 1]; bin ``k``
            is ``[e_k, e_k+1)``, the last one closed. Defaults to 0, 0.1,
            ..., 1.
        occlusion_level (str): ``'image'`` bins each image by its occlusion
            ratio r (paper, eq. 5); ``'instance'`` bins each instance by its
            occluded fraction, the other instances of its image being
            ignored as crowd regions. Defaults to 'image'.
        instance_shape (str): ``'auto'``: an instance is its mask when it
            has a segmentation, else its box; ``'box'``: always its box.
            COCO's masks are visible parts that barely overlap, so on COCO
            (and COCO-style data) use ``'box'`` to measure occlusion as
            Tied Block Convolution does. Defaults to 'auto'.
        **kwargs: Arguments of :class:`mmdet.evaluation.CocoMetric`. When
            ``outfile_prefix`` is given, the metrics are also written to
            ``{outfile_prefix}.occlusion.json`` (input of
            ``tools/analysis_tools/plot_occlusion.py``).
    """

    def __init__(self,
                 bin_edges: Sequence[float] = DEFAULT_BIN_EDGES,
                 occlusion_level: str = 'image',
                 instance_shape: str = 'auto',
                 **kwargs) -> None:
        self.instance_shape = check_instance_shape(instance_shape)
        self.bin_edges = check_bin_edges(bin_edges)
        self.occlusion_level = check_choice('occlusion_level',
                                            occlusion_level, OCCLUSION_LEVELS)
        ann_file = kwargs.get('ann_file')
        try:
            super().__init__(**kwargs)
        except (ValueError, TypeError, AssertionError):
            # pycocotools' message names no file: say what is wrong with it
            if ann_file is not None and osp.isfile(ann_file):
                load_coco_annotations(ann_file, COCO_REQUIRED_KEYS)
            raise
        if self._coco_api is not None:
            check_json_object(self._coco_api.dataset, ann_file,
                              COCO_ANNOTATION_FILE, COCO_REQUIRED_KEYS)
        self._occlusion = None

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's results followed by the results per occlusion bin.

        Args:
            results (list): The processed results of each batch.

        Returns:
            Dict[str, float]: The computed metrics.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        if self._coco_api is None:
            with tempfile.TemporaryDirectory() as tmp_dir:
                self._coco_api = api_wrappers.COCO(
                    self.gt_to_coco_json(gts, osp.join(tmp_dir, 'results')))
        self._warn_non_finite_scores(preds, logger)
        evaluable = self._evaluable_metrics(preds, logger)
        requested, self.metrics = self.metrics, evaluable
        try:
            eval_results = super().compute_metrics(results)
        finally:
            self.metrics = requested
        iou_types = [m for m in evaluable if m in BIN_IOU_TYPES]
        if self.format_only or not iou_types:
            return eval_results

        with tempfile.TemporaryDirectory() as tmp_dir:
            result_files = self.results2json(preds, osp.join(tmp_dir, 'occ'))
            predictions = {t: load(result_files[t]) for t in iou_types}
        eval_results.update(self._evaluate_bins(predictions, logger))
        if self.outfile_prefix is not None:
            dump(dict(eval_results), f'{self.outfile_prefix}.occlusion.json')
        return eval_results

    @staticmethod
    def _warn_non_finite_scores(preds: Sequence[dict],
                                logger: MMLogger) -> None:
        """Count the predictions whose score (box or mask score) is NaN or
        infinite: COCOeval ranks them as it sorts them, NaN below every
        score, which no result shows."""
        scores = [
            np.concatenate([pred[key] for key in ('scores', 'mask_scores')
                            if key in pred]) for pred in preds
        ]
        non_finite = [int(np.count_nonzero(~np.isfinite(s))) for s in scores]
        if any(non_finite):
            logger.warning(
                f'{sum(non_finite)} of {sum(map(len, scores))} prediction '
                f'scores, in {np.count_nonzero(non_finite)} of {len(preds)} '
                'images, are not finite (NaN or infinite): COCOeval ranks a '
                'NaN score below every other score, in the results over all '
                'images and in the occlusion bins.')

    def _evaluable_metrics(self, preds: Sequence[dict],
                           logger: MMLogger) -> List[str]:
        """``self.metrics`` without ``segm`` when the predictions have no
        masks or some ground truth has no segmentation."""
        if 'segm' not in self.metrics:
            return self.metrics
        reason = None
        if not all('masks' in pred for pred in preds):
            reason = 'the predictions carry no masks'
        else:
            anns = self._coco_api.dataset.get('annotations', [])
            missing = sum(not has_segmentation(ann) for ann in anns)
            if missing:
                reason = (f'{missing} of {len(anns)} ground-truth annotations '
                          'have no segmentation')
        if reason is None:
            return self.metrics
        logger.warning(f"'segm' is not evaluated: {reason}; "
                       'no segm results are reported.')
        return [m for m in self.metrics if m != 'segm']

    def _occlusion_ratios(self, logger: MMLogger) -> OcclusionRatios:
        """Compute the ground truth's occlusion once and log what it left
        out."""
        if self._occlusion is None:
            self._occlusion = compute_occlusion(self._coco_api,
                                                self.instance_shape)
            ratios = self._occlusion.image_ratios
            fractions = self._occlusion.instance_fractions
            if self.instance_shape == 'box':
                shape = 'each instance taken as its box'
            elif self._occlusion.num_box_instances:
                shape = (f'each instance taken as its mask, or as its box '
                         f'for the {self._occlusion.num_box_instances} '
                         'without segmentation')
            else:
                shape = 'each instance taken as its mask'
            logger.info(f'Occlusion ratios of {len(ratios)} images and '
                        f'{len(fractions)} non-crowd instances, {shape} '
                        f"(instance_shape='{self.instance_shape}').")
            unrated = sum(math.isnan(r) for r in ratios.values())
            if unrated:
                logger.warning(
                    f'{unrated} images have no occlusion ratio (no non-crowd '
                    'instance with pixels: no annotation, or crowd only): '
                    'they count in the results over all images but are in '
                    'no occlusion bin.')
            empty = sum(math.isnan(f) for f in fractions.values())
            if empty and self.occlusion_level == 'instance':
                logger.warning(
                    f'{empty} instances have no pixel: they count in the '
                    'results over all images but in no instance-level bin.')
        return self._occlusion

    def _warn_outside_edges(self, bins: List[OcclusionBin],
                            logger: MMLogger) -> None:
        """Warn about the images (instances) with a value outside the bin
        edges, which are in no bin."""
        outside, rated = count_outside_bins(self._occlusion, bins,
                                            self.occlusion_level)
        if outside:
            what = ('images have an occlusion ratio'
                    if self.occlusion_level == 'image' else
                    'instances have an occluded fraction')
            logger.warning(
                f'{outside} of {rated} {what} outside the bin edges '
                f'[{self.bin_edges[0]:g}, {self.bin_edges[-1]:g}]: they '
                'count in the results over all images but are in no '
                'occlusion bin.')

    def _evaluate_bins(self, predictions: Dict[str, list],
                       logger: MMLogger) -> Dict[str, float]:
        """Evaluate every occlusion bin and log them as a table.

        Args:
            predictions (dict[str, list]): COCO json results per IoU type
                (``bbox``, ``segm``).
            logger (MMLogger): Logger for the table and warnings.

        Returns:
            Dict[str, float]: ``occ/...`` metrics, rounded like CocoMetric's.
        """
        bins = occlusion_bins(
            self._occlusion_ratios(logger), self.bin_edges,
            self.occlusion_level)
        self._warn_outside_edges(bins, logger)
        coco_dts = {}
        for iou_type, dets in predictions.items():
            if iou_type == 'segm':
                # as in CocoMetric: given a bbox, loadRes would take the box
                # for the mask
                for det in dets:
                    det.pop('bbox')
            if dets:
                with contextlib.redirect_stdout(io.StringIO()):
                    coco_dts[iou_type] = self._coco_api.loadRes(dets)
            else:
                logger.error(f'No {iou_type} predictions: the occlusion bins '
                             f'are not evaluated for {iou_type}.')

        eval_results = OrderedDict()
        names = [f'{t}_{item}' for t in coco_dts for item, _ in
                 BIN_METRIC_ITEMS]
        table = [[f'occlusion ({self.occlusion_level})', 'images',
                  'instances'] + names]
        for occ_bin in bins:
            label = occ_bin.label
            eval_results[f'occ/num_images_{label}'] = len(occ_bin.img_ids)
            eval_results[f'occ/num_instances_{label}'] = len(occ_bin.ann_ids)
            values = self._evaluate_bin(occ_bin, coco_dts)
            if not occ_bin.img_ids:
                logger.warning(f'Occlusion bin {label} has no images: its AP '
                               'is NaN.')
            for name, value in zip(names, values):
                eval_results[f'occ/{name}_{label}'] = round(value, 3)
            table.append([label, len(occ_bin.img_ids), len(occ_bin.ann_ids)] +
                         [f'{v:.3f}' for v in values])
        logger.info('\n' + AsciiTable(table).table)
        return eval_results

    def _evaluate_bin(self, occ_bin: OcclusionBin,
                      coco_dts: Dict[str, COCO]) -> List[float]:
        """AP, AP50 and AP75 of one bin for every IoU type of ``coco_dts``
        (NaN for a bin without images), evaluated as CocoMetric evaluates
        all images."""
        if not occ_bin.img_ids:
            return [math.nan] * len(coco_dts) * len(BIN_METRIC_ITEMS)
        values = []
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = _coco_from_dict(subset_dataset(self._coco_api, occ_bin))
            for iou_type, coco_dt in coco_dts.items():
                coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
                coco_eval.params.catIds = self.cat_ids
                coco_eval.params.imgIds = occ_bin.img_ids
                coco_eval.params.maxDets = list(self.proposal_nums)
                coco_eval.params.iouThrs = self.iou_thrs
                coco_eval.params.areaRng = coco_eval.params.areaRng[:1]
                coco_eval.params.areaRngLbl = coco_eval.params.areaRngLbl[:1]
                coco_eval.evaluate()
                coco_eval.accumulate()
                # stats of the other area ranges are -1, never read
                coco_eval.summarize()
                values += [
                    float(coco_eval.stats[index])
                    for _, index in BIN_METRIC_ITEMS
                ]
        return values


# the previous registered name: builds CocoOcclusionRatioMetric with a
# FutureWarning
OcclusionRatioMetric = register_deprecated_alias(METRICS,
                                                 'OcclusionRatioMetric',
                                                 CocoOcclusionRatioMetric)
