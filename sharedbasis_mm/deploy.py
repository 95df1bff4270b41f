"""ONNX export and the comparison of outputs (the fusion for inference is
:mod:`sharedbasis_mm.layers.fusion`)."""
from typing import Any, List, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor


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
