from .occlusion import (DEFAULT_BIN_EDGES, OcclusionBin, OcclusionRatios,
                        bin_label, check_bin_edges, compute_occlusion,
                        count_outside_bins, image_overlaps, instance_rle,
                        load_coco_annotations, occlusion_bins,
                        subset_dataset)
from .occlusion_ratio_metric import (CocoOcclusionRatioMetric,
                                     OcclusionRatioMetric)

__all__ = [
    'DEFAULT_BIN_EDGES', 'OcclusionBin', 'OcclusionRatios', 'bin_label',
    'check_bin_edges', 'compute_occlusion', 'count_outside_bins',
    'image_overlaps', 'instance_rle', 'load_coco_annotations',
    'occlusion_bins', 'subset_dataset', 'CocoOcclusionRatioMetric',
    'OcclusionRatioMetric'
]
