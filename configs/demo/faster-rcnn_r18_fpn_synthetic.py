# The demo's baseline: the demo detector with mmdet's plain ResNet-18 of the
# same width (16 channels first) in place of the shared-basis ResNet-18;
# data, schedule, seed, neck and heads are the demo config's
# (`tools/demo.py --backbones r18`).
_base_ = './faster-rcnn_r18-s8u1_fpn_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        zero_init_residual=False,  # as the shared-basis detector
        out_indices=(0, 1, 2, 3),
        init_cfg=None))
# no shared filter bases, so no orthogonality regularization
custom_hooks = []
