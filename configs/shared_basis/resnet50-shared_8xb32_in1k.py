_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisResNet',
        depth=50,
        basis_cfg=dict(share='conv2')))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 1',
    params=20.51e6,
    flops=4.11e9,
    input_shape=(3, 224, 224))
