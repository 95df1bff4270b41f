"""Cityscapes Mask R-CNN (Tied Block Convolution, Table 2): the ResNet-50,
TiedResNet-50-S and TiedResNet-50 configs (``configs/detection/cityscapes/``)
on mmdet's Cityscapes config, their backbones against the table, their
training, and the occlusion-ratio metric on Cityscapes' COCO-format
annotations as mmdet's converter writes them."""
import copy
import functools
import json
import math
import os.path as osp

import mmdet
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.datasets import CityscapesDataset
from mmengine.config import Config
from mmengine.registry import METRICS, DefaultScope

import sharedbasis_mm  # noqa: F401
from config_helpers import one_thread  # noqa: F401 (an autouse fixture)
from config_helpers import without_scope
from sharedbasis_mm.analysis import complexity_row
from sharedbasis_mm.backbones import TiedResNet
from sharedbasis_mm.evaluation import CocoOcclusionRatioMetric
from two_iteration_training import (detection_batch, few_proposals,
                                    train_two_iterations)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs', 'detection', 'cityscapes')
MMDET_CONFIG = osp.join(
    osp.dirname(mmdet.__file__), '.mim', 'configs', 'cityscapes',
    'mask-rcnn_r50_fpn_1x_cityscapes.py')
FC = 2048 * 1000 + 1000  # the ImageNet classifier's fc, in Table 2's sizes
# config name: (backbone type, Table 2's backbone parameters)
CONFIGS = {
    'mask-rcnn_r50_fpn_1x_cityscapes': ('ResNet', 25.6e6),
    'mask-rcnn_tiedresnet50-s_fpn_1x_cityscapes': ('TiedResNet', 13.9e6),
    'mask-rcnn_tiedresnet50_fpn_1x_cityscapes': ('TiedResNet', 22.0e6),
}


@functools.lru_cache(maxsize=None)
def load_config(name: str) -> Config:
    path = MMDET_CONFIG if name == 'mmdet' else osp.join(
        CONFIG_DIR, f'{name}.py')
    return Config.fromfile(path)


@pytest.mark.parametrize('name', list(CONFIGS))
def test_config_is_mmdets_cityscapes_config(name):
    """mmdet's data (8 classes, multi-scale 2048 x 800-1024 training,
    RepeatDataset x 8), schedule (8 epochs, lr 0.01 for 8 images),
    detector and backbone settings, with the tied backbone where it
    differs; the test set also evaluated per occlusion ratio, CityScapesMetric
    kept beside."""
    ours, mmdet_cfg = load_config(name), load_config('mmdet')
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'val_evaluator'):
        assert without_scope(ours[key]) == without_scope(mmdet_cfg[key]), key
    assert without_scope({
        k: v
        for k, v in ours.model.items() if k != 'backbone'
    }) == without_scope(
        {k: v
         for k, v in mmdet_cfg.model.items() if k != 'backbone'})
    backbone_type, _ = CONFIGS[name]
    backbone = without_scope(ours.model.backbone)
    expected = dict(without_scope(mmdet_cfg.model.backbone),
                    type=backbone_type)
    if name == 'mask-rcnn_tiedresnet50-s_fpn_1x_cityscapes':
        expected.update(base_width=18, split_blocks=[1, 2, 2, 2])
    assert backbone == expected
    coco, cityscapes = ours.test_evaluator
    assert without_scope(coco) == dict(
        without_scope(mmdet_cfg.val_evaluator[0]),
        type='CocoOcclusionRatioMetric', instance_shape='box')
    assert without_scope(cityscapes) == without_scope(
        mmdet_cfg.val_evaluator[1])
    # as mmdet's, from the COCO Mask R-CNN of the same backbone
    if backbone_type == 'ResNet':
        assert ours.load_from == mmdet_cfg.load_from
    else:
        coco_config = name.replace('_1x_cityscapes', '_8xb2-2x_coco')
        assert osp.isfile(
            osp.join(ROOT, 'configs', 'detection', 'tied',
                     coco_config + '.py'))
        assert ours.load_from == f'work_dirs/{coco_config}/epoch_24.pth'


@pytest.mark.parametrize('name', list(CONFIGS))
def test_backbone_params_as_table_2(name):
    """The backbone with the ImageNet classifier's fc (Table 2 gives the
    classifiers' sizes) within 3%: 25.56M, 13.73M, 22.15M."""
    row = complexity_row(osp.join(CONFIG_DIR, f'{name}.py'))
    assert row['part'] == 'backbone'
    _, paper = CONFIGS[name]
    assert row['paper_params'] == paper
    assert abs((row['params'] + FC) / paper - 1) < 0.03


@pytest.mark.parametrize('name', list(CONFIGS))
def test_config_trains_two_iterations(name):
    cfg = load_config(name).copy()
    cfg.model = Config(cfg.model.to_dict())
    few_proposals(cfg.model)
    model, _ = train_two_iterations(cfg, detection_batch(8, with_mask=True))
    assert isinstance(model.backbone, TiedResNet) is (
        CONFIGS[name][0] == 'TiedResNet')


# --------------------------------------------------------------------------
# the occlusion metric on Cityscapes' COCO-format annotations

HEIGHT, WIDTH = 48, 64
# Cityscapes' label ids of the 8 evaluated classes with instances
CATEGORIES = dict(person=24, rider=25, car=26, truck=27, bus=28, train=31,
                  motorcycle=32, bicycle=33)


def instance_ids_image(image: int) -> np.ndarray:
    """A Cityscapes ``*_instanceIds.png``: each pixel the id of the one
    instance it shows (label id * 1000 + index), or a label id alone for a
    crowd region.

    Image 0: a car (x 0-40, y 10-30) in front of a person (x 30-50, y
    0-40), the person's visible part being its box less the car, and a
    crowd of cars. Image 1: a car alone."""
    ids = np.zeros((HEIGHT, WIDTH), dtype=np.int32)
    if image == 0:
        ids[0:40, 30:50] = 24000
        ids[10:30, 0:40] = 26000
        ids[40:48, 0:20] = 26  # a crowd region (id < 1000)
    else:
        ids[5:25, 5:45] = 26000
    return ids


def cityscapes_coco(num_images: int = 2) -> dict:
    """The COCO-format file mmdet's tools/dataset_converters/cityscapes.py
    writes: ids from 0, the instances' visible parts as compressed RLE, crowd
    regions with iscrowd=1, Cityscapes' label ids as category ids.

    Annotation 0 is the crowd region (crowd ids sort first, as in the
    converter): pycocotools' COCOeval records a match by the annotation's
    id, 0 meaning none, so it never matches a detection to a non-crowd
    annotation of id 0, on Cityscapes' first annotation as anywhere."""
    images, annotations = [], []
    for img_id in range(num_images):
        ids = instance_ids_image(img_id)
        images.append(
            dict(id=img_id, file_name=f'city/city_{img_id}_leftImg8bit.png',
                 height=HEIGHT, width=WIDTH,
                 segm_file=f'city/city_{img_id}_gtFine_labelIds.png'))
        for inst_id in np.unique(ids[ids >= 24]):
            rle = mask_util.encode(
                np.asfortranarray((ids == inst_id).astype(np.uint8)))
            annotations.append(
                dict(id=len(annotations), image_id=img_id,
                     category_id=int(inst_id // 1000
                                     if inst_id >= 1000 else inst_id),
                     iscrowd=int(inst_id < 1000),
                     bbox=mask_util.toBbox(rle).tolist(),
                     area=float(mask_util.area(rle)),
                     segmentation=dict(size=rle['size'],
                                       counts=rle['counts'].decode())))
    categories = [dict(id=i, name=n) for n, i in CATEGORIES.items()]
    return dict(images=images, annotations=annotations,
                categories=categories)


def ground_truth_predictions(dataset: dict) -> list:
    """Every non-crowd instance found exactly (box and mask), score 1."""
    classes = list(CATEGORIES)
    samples = []
    for img in dataset['images']:
        anns = [a for a in dataset['annotations']
                if a['image_id'] == img['id'] and not a['iscrowd']]
        samples.append(
            dict(img_id=img['id'], ori_shape=(HEIGHT, WIDTH),
                 pred_instances=dict(
                     bboxes=torch.tensor([[x, y, x + w, y + h]
                                          for x, y, w, h in
                                          (a['bbox'] for a in anns)]),
                     scores=torch.ones(len(anns)),
                     labels=torch.tensor([
                         classes.index(
                             next(n for n, i in CATEGORIES.items()
                                  if i == a['category_id'])) for a in anns
                     ]),
                     masks=[dict(a['segmentation'],
                                 counts=a['segmentation']['counts'].encode())
                            for a in anns])))
    return samples


@pytest.mark.parametrize('instance_shape', ['box', 'auto'])
def test_occlusion_metric_on_cityscapes_annotations(tmp_path,
                                                    instance_shape):
    """The configs' metric on the converter's format. Cityscapes' masks are
    visible parts that never overlap (one instance per pixel), so only the
    boxes show the occlusion, as the configs measure it: image 0's person
    and car overlap by 10 x 20 px, r = 2 * 200 / (800 + 800) = 0.25 (the
    crowd region is no instance); image 1's car is alone. On the masks
    ('auto') every image has r = 0."""
    dataset = cityscapes_coco()
    ann_file = tmp_path / 'instancesonly_filtered_gtFine_val.json'
    ann_file.write_text(json.dumps(dataset))
    cfg = copy.deepcopy(
        load_config('mask-rcnn_r50_fpn_1x_cityscapes').test_evaluator[0])
    cfg.update(ann_file=str(ann_file), instance_shape=instance_shape)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(cfg)
    assert isinstance(metric, CocoOcclusionRatioMetric)
    assert metric.metrics == ['bbox', 'segm']
    metric.dataset_meta = CityscapesDataset.METAINFO
    metric.process({}, ground_truth_predictions(dataset))
    results = metric.evaluate(2)
    for iou_type in ('bbox', 'segm'):
        assert results[f'coco/{iou_type}_mAP'] == 1.0
    occupied = ({'0-0.1': 1, '0.2-0.3': 1}
                if instance_shape == 'box' else {'0-0.1': 2})
    for label, images in occupied.items():
        assert results[f'coco/occ/num_images_{label}'] == images
        assert results[f'coco/occ/bbox_mAP_{label}'] == 1.0
        assert results[f'coco/occ/segm_mAP_{label}'] == 1.0
    empty = [k for k in results
             if k.startswith('coco/occ/num_images_') and results[k] == 0]
    assert len(empty) == 10 - len(occupied)
    for key in empty:
        label = key[len('coco/occ/num_images_'):]
        assert math.isnan(results[f'coco/occ/bbox_mAP_{label}'])
