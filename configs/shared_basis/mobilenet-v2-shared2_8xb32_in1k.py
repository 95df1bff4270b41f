_base_ = [
    'mmpretrain::_base_/models/mobilenet_v2_1x.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_bs256_300e_mobilenet.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisMobileNetV2',
        share='expand_project',
        widen_factor=1.0,
        # The structure of the authors' code, into which their released
        # weights convert (tools/model_converters/net_rl2_to_mmpretrain.py):
        # an expansion also in the first block, ReLU inside the blocks
        # (ReLU6 in the stem and the last convolution) and ECA attention in
        # the sharing blocks.
        always_expand=True,
        block_act_cfg=dict(type='ReLU'),
        eca=True))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 1',
    params=2.98e6,
    flops=0.33e9,
    input_shape=(3, 224, 224))
