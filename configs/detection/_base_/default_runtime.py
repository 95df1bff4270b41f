# mmdet's runtime, with sharedbasis_mm registered (backbones, attention
# plugins, CocoOcclusionRatioMetric, OrthogonalityLossHook).
#
# The detectors with our backbones start from ImageNet models:
# ``backbone.init_cfg`` loads work_dirs/backbones/<classification config>.pth,
# the model trained by that config of configs/shared_basis or configs/tied
# turned into a backbone checkpoint, e.g. for TiedResNet-50:
#   python tools/train.py configs/tied/tiedresnet50_8xb32_in1k.py
#   python tools/model_converters/convert_cls_checkpoint.py \
#       work_dirs/tiedresnet50_8xb32_in1k/epoch_100.pth \
#       work_dirs/backbones/tiedresnet50_8xb32_in1k.pth
# The ResNet baselines keep mmdet's torchvision checkpoints.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['sharedbasis_mm'], allow_failed_imports=False)
