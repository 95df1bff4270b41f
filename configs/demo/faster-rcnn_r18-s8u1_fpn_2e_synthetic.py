# The demo's shared-basis detector on a short schedule: 2 of the demo's 7
# epochs (300 steps), to fine-tune it from a plain ResNet-18 detector
# converted by tools/model_converters/resnet_to_shared_basis.py (with
# `--cfg-options load_from=CONVERTED.pth`) and, for comparison, to train it
# from scratch for the same steps (docs/plain_to_shared_basis.md). Model,
# data, optimizer, seed and the orthogonality regularization are the demo
# config's.
_base_ = './faster-rcnn_r18-s8u1_fpn_synthetic.py'

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[1], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
