_base_ = [
    'mmpretrain::_base_/models/densenet/densenet121.py',
    '../_base_/datasets/cifar100_bs128.py',
    '../_base_/schedules/cifar_bs128_300e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

# The authors' DenseNet121_SingleShared(16, 1): the CIFAR stem, transitions
# without ReLU, and the fourth dense block on the third one's basis.
model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedBasisDenseNet_CIFAR',
        arch='121',
        shared_rank=16,
        unique_rank=1,
        basis_indices=(0, 1, 2, 2),
        transition_act=False),
    head=dict(num_classes=100, in_channels=1024))

# Their model also holds a fourth basis that no layer uses (18,432
# parameters), which Table 2's count includes and this model does not.
paper_reference = dict(
    source='Learning Deeply Shared Filter Bases, Table 2',
    params=5.08e6,
    flops=0.72e9,
    input_shape=(3, 32, 32))
