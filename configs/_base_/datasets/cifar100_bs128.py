# mmpretrain's CIFAR-100 data at 128 images per GPU (its cifar100_bs16 base
# has 16): the batch of the 1xb128 configs, the batch of 128 of Learning
# Deeply Shared Filter Bases (section 4.2, after He et al.) on one GPU.
_base_ = 'mmpretrain::_base_/datasets/cifar100_bs16.py'

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = dict(batch_size=128)
