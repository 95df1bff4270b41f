# TiedSENet-101-S: TiedResNet-101-S with a TiedSE module (ratio 16, B = 1) in
# every bottleneck (Tied Block Convolution, Table 1)
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
        type='TiedSEResNet',
        depth=101,
        base_width=18,
        split_blocks=(1, 2, 2, 2),
        se_ratio=16,
        se_blocks=1,
        out_indices=(3, )))

# the paper's schedule: SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch
# 256 (8 GPUs x 32), 100 epochs, lr / 10 every 30 epochs
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
auto_scale_lr = dict(base_batch_size=256)

paper_reference = dict(
    source='Tied Block Convolution, Table 1',
    params=26.4e6,
    flops=5.2e9,
    input_shape=(3, 224, 224))
