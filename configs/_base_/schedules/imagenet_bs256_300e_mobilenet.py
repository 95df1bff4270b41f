# Learning Deeply Shared Filter Bases, section 4.1: MobileNetV2 on ImageNet,
# SGD 0.1, momentum 0.9, weight decay 1e-5, batch 256, 300 epochs, /10 at
# epochs 150, 225 and 285.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[150, 225, 285], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
