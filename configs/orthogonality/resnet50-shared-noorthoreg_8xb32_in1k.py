# Learning Deeply Shared Filter Bases, Table 1, ResNet50-Shared-NoOrthoReg:
# ResNet50-Shared trained without the orthogonality regularization, i.e.
# without the OrthogonalityLossHook of
# configs/_base_/orthogonality_regularization.py.
_base_ = ['../shared_basis/resnet50-shared_8xb32_in1k.py']

custom_hooks = []
