# TiedResNet-50, 4s x 32w (Tied Block Convolution, Figure 4a, Table 1), on
# mmpretrain's ImageNet schedule for ResNets, which is the paper's: SGD lr
# 0.1, momentum 0.9, weight decay 1e-4, batch 256 (8 GPUs x 32), 100 epochs,
# lr / 10 every 30 epochs
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='TiedResNet',
        depth=50,
        out_indices=(3, )))

paper_reference = dict(
    source='Tied Block Convolution, Table 1',
    params=22.0e6,
    flops=4.4e9,
    input_shape=(3, 224, 224))
