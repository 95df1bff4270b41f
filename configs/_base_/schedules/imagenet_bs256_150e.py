# Learning Deeply Shared Filter Bases, section 4.1: ResNets on ImageNet, SGD
# 0.1, momentum 0.9, weight decay 1e-4, batch 256, 150 epochs, /10 at epochs
# 60, 100 and 140.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[60, 100, 140], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
