_base_ = [
    'mmpretrain::_base_/models/mobilenet_v2_1x.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/imagenet_bs256_300e_mobilenet.py',
    'mmpretrain::_base_/default_runtime.py',
]

paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 1',
    params=3.5e6,
    flops=0.33e9,
    input_shape=(3, 224, 224))
