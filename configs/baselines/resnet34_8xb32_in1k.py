_base_ = [
    'mmpretrain::_base_/models/resnet34.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    'mmpretrain::_base_/default_runtime.py',
]

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 1',
    params=21.8e6,
    flops=3.67e9,
    input_shape=(3, 224, 224))
