# Faster R-CNN, TiedResNet-50-S (Tied Block Convolution), 2x schedule
_base_ = './faster-rcnn_tiedresnet50_fpn_8xb2-2x_coco.py'

model = dict(
    backbone=dict(
        base_width=18,
        split_blocks=(1, 2, 2, 2),
        init_cfg=dict(
            checkpoint='work_dirs/backbones/tiedresnet50-s_8xb32_in1k.pth')))

paper_reference = dict(params=13.9e6)
