# Learning Deeply Shared Filter Bases, section 4.2: CIFAR, SGD 0.1, momentum
# 0.9, weight decay 5e-4, 300 epochs, /10 at 50% and 75% of the epochs; batch
# 128 as He et al.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[150, 225], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
