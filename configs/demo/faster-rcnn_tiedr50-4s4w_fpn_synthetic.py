# A tied backbone for the demo (`tools/demo.py --backbones r18-s8u1 r18
# tiedr50`): the demo detector with a narrow TiedResNet-50 of Tied Block
# Convolution, 16 channels first as the demo's ResNet-18s, 4 splits of
# 4 channels at the first stage (4s x 4w against the paper's 4s x 32w) and
# split blocks (1, 2, 2, 4), as the split width 4 allows. Its bottlenecks
# end in 4x wider outputs (64-512 channels), which the FPN reads.
_base_ = './faster-rcnn_r18-s8u1_fpn_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='TiedResNet',
        depth=50,
        base_channels=16,
        splits=4,
        base_width=4,
        split_blocks=(1, 2, 2, 4),
        frozen_stages=-1,
        norm_eval=False,
        zero_init_residual=False,  # as the shared-basis detector
        out_indices=(0, 1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]))
# no shared filter bases, so no orthogonality regularization
custom_hooks = []
