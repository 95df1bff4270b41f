"""False positives under occlusion (Tied Block Convolution, Figure 7c): the
count on a hand-built annotation/result pair against a hand count, per
occlusion bin, and the tool on the pickles of mmdet's DumpDetResults."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.evaluation.metrics import DumpDetResults
from mmdet.structures import DetDataSample
from mmengine.fileio import dump, load
from mmengine.structures import InstanceData

from sharedbasis_mm.evaluation import compute_occlusion, occlusion_bins
from sharedbasis_mm.evaluation.false_positives import (
    Detections, false_positive_mask, false_positives_per_bin,
    image_false_positives, results_to_detections)
from tool_loading import load_tool

# category ids 3 and 7: labels 0 and 1 of mmdet's CocoDataset
CATEGORIES = [dict(id=3, name='a'), dict(id=7, name='b')]
A, B = [0, 0, 40, 40], [20, 0, 40, 40]  # overlap 20 x 40: ratio 0.5


def annotation(ann_id, img_id, bbox, category_id=3, iscrowd=0):
    return dict(id=ann_id, image_id=img_id, bbox=bbox,
                category_id=category_id, iscrowd=iscrowd,
                area=bbox[2] * bbox[3])


def xyxy(box):
    return [box[0], box[1], box[0] + box[2], box[1] + box[3]]


# Ground truth (all boxes, no segmentation; images 100 x 100):
#   1: A and B of class a, half overlapping          ratio 0.5
#   2: one box of class a, and a crowd region of a   ratio 0
#   3: two apart boxes of class b                    ratio 0
#   4: three copies of one box of class a            ratio 1
#   5: nothing                                       no ratio, no bin
DATASET = dict(
    images=[dict(id=i, height=100, width=100, file_name=f'{i}.jpg')
            for i in range(1, 6)],
    categories=CATEGORIES,
    annotations=[
        annotation(1, 1, A), annotation(2, 1, B),
        annotation(3, 2, [10, 10, 20, 20]),
        annotation(4, 2, [60, 60, 30, 30], iscrowd=1),
        annotation(5, 3, [0, 0, 10, 10], 7),
        annotation(6, 3, [50, 50, 10, 10], 7),
        annotation(7, 4, [30, 30, 20, 20]), annotation(8, 4, [30, 30, 20, 20]),
        annotation(9, 4, [30, 30, 20, 20]),
    ])

# (image, box [x, y, w, h], score, label), not in score order. Hand count
# at IoU 0.5 and score 0.3:
DETECTIONS = [
    (1, B, 0.7, 0),                  # B: true positive
    (1, [70, 70, 10, 10], 0.2, 0),   # below the score threshold
    (1, A, 0.9, 0),                  # A: true positive (taken first)
    (1, [1, 0, 40, 40], 0.8, 0),     # A taken, IoU with B 0.35: FP
    (1, B, 0.95, 1),                 # class b on class a: FP
    (2, [10, 10, 20, 20], 0.5, 0),   # true positive
    (2, [80, 0, 10, 10], 0.6, 0),    # on nothing: FP
    (2, [65, 65, 10, 10], 0.9, 0),   # inside the crowd region: ignored
    (4, [30, 30, 20, 20], 0.9, 0),   # the three copies: 3 true positives,
    (4, [30, 30, 20, 20], 0.8, 0),
    (4, [30, 30, 20, 20], 0.7, 0),
    (4, [31, 30, 20, 20], 0.6, 0),   # and one too many: FP
    (5, [0, 0, 5, 5], 0.9, 0),       # FP of an image in no bin
]
HAND_FALSE_POSITIVES = {1: 2, 2: 1, 3: 0, 4: 1, 5: 1}
# bins 0-0.1: images 2, 3 (1 FP); 0.5-0.6: image 1 (2); 0.9-1: image 4 (1)
HAND_PER_BIN = {'0-0.1': (2, 1), '0.5-0.6': (1, 2), '0.9-1': (1, 1)}


def detections_by_image(rows):
    by_image = {}
    for img_id, box, score, label in rows:
        by_image.setdefault(img_id, []).append((box, score, label))
    return by_image


def dump_results(rows, path):
    """The pickle mmdet's tools/test.py --out writes, by its own
    DumpDetResults, for detections ``rows``."""
    metric = DumpDetResults(out_file_path=str(path))
    samples = []
    for img_id, dets in detections_by_image(rows).items():
        sample = DetDataSample(metainfo=dict(
            img_id=img_id, img_path=f'{img_id}.jpg', ori_shape=(100, 100)))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([xyxy(d[0]) for d in dets],
                                dtype=torch.float32),
            scores=torch.tensor([d[1] for d in dets]),
            labels=torch.tensor([d[2] for d in dets]))
        samples.append(sample.to_dict())
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    return str(path)


def hand_detections(rows):
    return {
        img_id: Detections(
            np.array([d[0] for d in dets], dtype=np.float64),
            np.array([d[1] for d in dets]),
            np.array([CATEGORIES[d[2]]['id'] for d in dets]))
        for img_id, dets in detections_by_image(rows).items()
    }


def test_false_positives_equal_the_hand_count_per_image_and_bin():
    masks = image_false_positives(DATASET, hand_detections(DETECTIONS))
    assert {i: int(m.sum()) for i, m in masks.items()} == \
        HAND_FALSE_POSITIVES
    # which detections: image 1's are the 4th and 5th of its list
    assert masks[1].tolist() == [False, False, False, True, True]
    bins = occlusion_bins(compute_occlusion(DATASET))
    rows = false_positives_per_bin(masks, bins)
    assert len(rows) == 10
    for row in rows:
        images, fps = HAND_PER_BIN.get(row['bin'], (0, 0))
        assert (row['num_images'], row['false_positives']) == (images, fps)
        assert row['per_image'] == (fps / images if images else None)


def test_a_lower_threshold_and_stricter_iou_count_more():
    anns = [annotation(1, 1, A)]
    dets = Detections(np.array([[0, 0, 40, 40], [4, 0, 40, 40],
                                [0, 0, 40, 40]], dtype=np.float64),
                      np.array([0.25, 0.9, 0.5]), np.array([3, 3, 3]))
    # at 0.3: the 0.9 one takes A (IoU 0.82), the 0.5 one is left over
    assert false_positive_mask(anns, dets).tolist() == [False, False, True]
    assert false_positive_mask(anns, dets, score_thr=0.2).tolist() == \
        [True, False, True]
    # at IoU 0.9 the 0.9 one matches nothing, and the 0.5 one takes A
    assert false_positive_mask(anns, dets, iou_thr=0.9).tolist() == \
        [False, True, False]
    with pytest.raises(ValueError, match='iou_thr'):
        false_positive_mask(anns, dets, iou_thr=0)


def test_results_of_dump_det_results_are_read(tmp_path):
    results = load(dump_results(DETECTIONS, tmp_path / 'r.pkl'))
    detections = results_to_detections(results, [3, 7])
    expected = hand_detections(DETECTIONS)
    assert sorted(detections) == sorted(expected)
    for img_id, dets in expected.items():
        np.testing.assert_allclose(detections[img_id].boxes, dets.boxes)
        np.testing.assert_allclose(detections[img_id].scores, dets.scores,
                                   rtol=1e-6)
        assert detections[img_id].category_ids.tolist() == \
            dets.category_ids.tolist()
    with pytest.raises(ValueError, match='label 1; expected labels 0 to 0'):
        results_to_detections(results, [3])


def test_tool_writes_the_counts_of_each_model(tmp_path, capsys):
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(DATASET))
    tied = dump_results(DETECTIONS, tmp_path / 'tied.pkl')
    # the second model: only the true positives and image 5's FP
    plain = dump_results([DETECTIONS[i] for i in (0, 2, 5, 8, 9, 10, 12)],
                         tmp_path / 'plain.pkl')
    out_dir = tmp_path / 'out'
    output = load_tool('analysis_tools/visualize_occlusion').main([
        str(ann_file), tied, plain, '--labels', 'Tied', 'Plain',
        '--out-dir', str(out_dir), '--num-images', '2'])
    with open(out_dir / 'false_positives.json') as f:
        assert json.load(f) == output
    assert list(output['models']) == ['Tied', 'Plain']
    for row in output['models']['Tied']:
        images, fps = HAND_PER_BIN.get(row['bin'], (0, 0))
        assert row['false_positives'] == fps
    assert [row['false_positives'] for row in output['models']['Plain']] \
        == [0] * 10
    assert 'Tied: false positives per image by occlusion bin: 0-0.1: ' \
        '0.50, 0.5-0.6: 2.00, 0.9-1: 1.00' in capsys.readouterr().out
    # the two most occluded images, drawn: image 4 (ratio 1), image 1 (0.5)
    assert sorted(p.name for p in (out_dir / 'most_occluded').iterdir()) \
        == ['00_4.png', '01_1.png']


def test_tool_refuses_a_result_that_is_no_detection_pickle(tmp_path,
                                                           capsys):
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(DATASET))
    bad = tmp_path / 'bad.pkl'
    dump({'state_dict': {}}, str(bad))
    with pytest.raises(SystemExit, match='bad.pkl: it holds a dict; '
                       'expected a list'):
        load_tool('analysis_tools/visualize_occlusion').main([
            str(ann_file), str(bad), '--labels', 'x', '--out-dir',
            str(tmp_path / 'out')])
    for results, labels in (([bad], ['x', 'y']), ([bad, bad], ['x', 'x'])):
        with pytest.raises(SystemExit):
            load_tool('analysis_tools/visualize_occlusion').main([
                str(ann_file), *map(str, results), '--labels', *labels,
                '--out-dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert 'expected one name per RESULT (1), got 2' in err
    assert "expected distinct names, got ['x', 'x']" in err
