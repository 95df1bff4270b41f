# The demo: Faster R-CNN with a small shared-basis ResNet-18 (S8U1, 16
# channels first), trained from scratch on the CPU on the synthetic occlusion
# set (`make demo`, tools/demo.py).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/orthogonality_regularization.py',
]
custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)

data_root = 'work_dirs/demo/data/'
classes = ('circle', 'triangle', 'rectangle', 'star')
image_size = (128, 128)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='SharedBasisResNet',
        depth=18,
        base_channels=16,
        basis_cfg=dict(shared_rank=8, unique_rank=1, num_bases=1),
        frozen_stages=-1,
        norm_eval=False,
        # the residual norms start at one, as in the demo's other backbones
        zero_init_residual=False,
        out_indices=(0, 1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        # The objects are at most 72 pixels wide: RoIs of 28-56 pixels
        # (sqrt of the area) take stride-8 features, of 56-112 stride-16
        # ones; mmdet's default of 56 puts every RoI under 112 pixels on the
        # shallow stride-4 level.
        bbox_roi_extractor=dict(out_channels=32, finest_scale=14),
        # a box head of 512 channels: the shape classes are the hard part
        bbox_head=dict(in_channels=32, fc_out_channels=512,
                       num_classes=len(classes))),
    # Few, small objects per image: fewer proposals and sampled RoIs.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img=''),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img=''),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
# The synthetic masks are visible parts, as COCO's: occlusion from the boxes.
test_evaluator = dict(
    type='CocoOcclusionRatioMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    instance_shape='box',
    bin_edges=(0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6))

# 7 epochs (150 steps each on the 1200 training images of tools/demo.py);
# the lr drops tenfold after the fifth and the sixth
max_epochs = 7
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[5, 6], gamma=0.1),
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
    # a bar over the 25 evaluation batches (the logger logs every 50)
    evaluation_progress=dict(type='EvaluationProgressHook'))
auto_scale_lr = dict(enable=False, base_batch_size=8)
# The same initial weights and data order in every run.
randomness = dict(seed=0)
