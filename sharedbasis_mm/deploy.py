"""Model-level fusion of shared-basis layers for inference, and its checks."""
from typing import Any, List, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, fuse_conv_bn
from torch import Tensor

from .layers import BasisConv2d, SharedBasisConv2d, find_shared_bases


def fuse_shared_basis(model: nn.Module) -> nn.Module:
    """Replace every shared-basis layer of a model by a plain convolution.

    Each :class:`SharedBasisConv2d` (basis -> BN -> coefficients) becomes one
    ``nn.Conv2d`` with bias, and each bare :class:`BasisConv2d` a
    ``nn.Conv2d`` holding its basis; the shared bases, which no layer uses
    any more, are unregistered from the modules owning them (the residual
    groups). The fused model computes what the original computes in eval
    mode and holds no shared parameter. The model is changed in place and
    returned.
    """
    bases = {id(basis) for basis in find_shared_bases(model).values()}
    _replace_shared_basis_layers(model)
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if id(param) in bases:
                delattr(module, name)
    return model


def _replace_shared_basis_layers(model: nn.Module) -> None:
    for name, child in list(model.named_children()):
        if isinstance(child, (SharedBasisConv2d, BasisConv2d)):
            setattr(model, name, child.fuse())
        else:
            _replace_shared_basis_layers(child)


def check_conv_bn_order(model: nn.Module) -> None:
    """Raise a ValueError where folding BN into the conv before it is wrong.

    mmcv's :func:`~mmcv.cnn.fuse_conv_bn` folds a BatchNorm into the
    ``nn.Conv2d`` registered just before it among its siblings. That is the
    data flow of mmdet's and mmpretrain's ResNet blocks, of ``nn.Sequential``
    and of a ``ConvModule`` ordered conv -> norm, but not of a
    ``ConvModule`` whose norm does not directly follow its conv.
    """
    for name, module in model.named_modules():
        if isinstance(module, ConvModule) and module.with_norm:
            order = tuple(module.order)
            if order.index('norm') != order.index('conv') + 1:
                raise ValueError(
                    f'cannot fold the norm of ConvModule {name!r} into its '
                    f'conv: order={order}; expected the norm right after '
                    f'the conv')


def fuse_model(model: nn.Module) -> nn.Module:
    """Fuse a model for inference: shared bases, then BatchNorms.

    :func:`fuse_shared_basis` first turns every shared-basis layer into a
    plain ``nn.Conv2d``; mmcv's :func:`~mmcv.cnn.fuse_conv_bn` then folds
    each BatchNorm into the convolution before it (bias included, so it is
    exact for the fused convolutions too) and leaves an ``nn.Identity`` in
    its place. The result computes what the model computes in eval mode;
    it is changed in place and returned.

    Raises:
        ValueError: If a ``ConvModule`` applies its norm other than right
            after its conv (see :func:`check_conv_bn_order`).
    """
    check_conv_bn_order(model)
    with torch.no_grad():
        fuse_conv_bn(fuse_shared_basis(model))
    return model


def flatten_tensors(outputs: Any) -> List[Tensor]:
    """The tensors of a (nested) tuple, list or dict of outputs, in order."""
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return [t for output in outputs for t in flatten_tensors(output)]
    raise TypeError(f'expected tensors in tuples, lists or dicts, got '
                    f'{type(outputs).__name__}')


def max_abs_difference(outputs: Sequence[Tensor],
                       references: Sequence[Tensor]) -> float:
    """The largest absolute difference between two lists of outputs."""
    if len(outputs) != len(references):
        raise ValueError(f'{len(outputs)} outputs compared with '
                         f'{len(references)} references')
    difference = 0.
    for output, reference in zip(outputs, references):
        if output.shape != reference.shape:
            raise ValueError(f'output of shape {tuple(output.shape)} '
                             f'compared with a reference of shape '
                             f'{tuple(reference.shape)}')
        difference = max(difference,
                         (output - reference).abs().max().item())
    return difference


def export_onnx(model: nn.Module, inputs: Tensor, path: str) -> List[str]:
    """Export ``model`` applied to ``inputs`` to an ONNX file.

    Uses :func:`torch.onnx.export` (its default exporter), weights inside
    the one file; the input is named ``input``, the outputs, the tensors of
    ``model(inputs)`` in order, ``output0``, ``output1``, .... The model is
    exported in eval mode; the output names are returned.
    """
    model.eval()
    with torch.no_grad():
        num_outputs = len(flatten_tensors(model(inputs)))
    output_names = [f'output{i}' for i in range(num_outputs)]
    torch.onnx.export(
        model, (inputs, ),
        path,
        input_names=['input'],
        output_names=output_names,
        external_data=False,
        verbose=False)
    return output_names


def run_onnx(path: str, inputs: Tensor) -> List[Tensor]:
    """Run an exported model with onnxruntime on the CPU.

    Raises:
        ImportError: If onnxruntime is not installed.
    """
    import onnxruntime
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    outputs = session.run(None, {'input': inputs.detach().cpu().numpy()})
    return [torch.from_numpy(np.asarray(output)) for output in outputs]
