_base_ = [
    'mmpretrain::_base_/models/densenet/densenet121.py',
    '../_base_/datasets/cifar100_bs128.py',
    '../_base_/schedules/cifar_bs128_300e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# The authors' CIFAR-100 DenseNet121: the CIFAR stem, transitions without
# ReLU.
model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisDenseNetCifar',
        arch='121',
        transition_act=False),
    head=dict(num_classes=100, in_channels=1024))

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 2',
    params=7.05e6,
    flops=0.91e9,
    input_shape=(3, 32, 32))
