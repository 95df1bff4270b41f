# Learning Deeply Shared Filter Bases, Figure 3 (d): gradients flowing into the
# 4 shared bases of ResNet34-S16U1 with the unshared BN after each basis and
# the orthogonality regularization. GradientFlowHook logs the maximum and mean
# absolute gradient of each basis every 10 iterations and plots them at the end
# of each epoch into <log_dir>/gradient_flow/epoch_<n>.png. The other panels:
# (a) resnet34-s16u1-nobn_..., (b) resnet34-s16u1-bn_..., (c)
# resnet34-s16u1-nobn-orthoreg_...
_base_ = ['../shared_basis/resnet34-s32u1_1xb128_cifar100.py']

model = dict(backbone=dict(basis_cfg=dict(shared_rank=16, unique_rank=1)))

custom_hooks = [
    dict(type='OrthogonalityLossHook', loss_weight=10., reduction='mean'),
    dict(type='GradientFlowHook', interval=10),
]

# Not a model of the paper's tables.
paper_reference = None
