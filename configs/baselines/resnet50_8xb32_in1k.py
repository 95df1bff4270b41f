_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    'mmpretrain::_base_/default_runtime.py',
]

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 1',
    params=25.56e6,
    flops=4.11e9,
    input_shape=(3, 224, 224))
