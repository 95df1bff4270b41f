"""ONNX export and run of a model, and the comparison of its outputs, for
``tools/deployment/`` and the tests of the fused models."""
import os.path as osp
import tempfile
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


def onnx_providers(device: str) -> List[str]:
    """The onnxruntime execution providers that run on ``device``
    (``'cpu'`` or ``'cuda'``).

    Raises:
        ImportError: If onnxruntime is not installed.
        ValueError: If the installed onnxruntime cannot run on ``device``.
    """
    import onnxruntime
    if device == 'cpu':
        return ['CPUExecutionProvider']
    available = onnxruntime.get_available_providers()
    if device != 'cuda' or 'CUDAExecutionProvider' not in available:
        raise ValueError(
            f'onnxruntime cannot run on device={device!r}: its providers are '
            f'{available}; expected cpu, or cuda with onnxruntime-gpu '
            f'(CUDAExecutionProvider) installed')
    return ['CUDAExecutionProvider']


def onnx_session(path: str,
                 device: str = 'cpu',
                 threads: int = 0,
                 profile: bool = False) -> Any:
    """An onnxruntime ``InferenceSession`` of an exported model on
    ``device``, with every graph optimisation and ``threads`` intra-op
    threads (0: onnxruntime's default), one inter-op thread; ``profile``
    records its runs (``end_profiling()`` writes the trace in the temporary
    folder and returns its path).

    Raises:
        ImportError: If onnxruntime is not installed.
        ValueError: If it cannot run on ``device``.
    """
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = osp.join(tempfile.gettempdir(),
                                               'onnxruntime_profile')
    return onnxruntime.InferenceSession(
        path, options, providers=onnx_providers(device))


def run_onnx(path: str, inputs: Tensor) -> List[Tensor]:
    """Run an exported model with onnxruntime on the CPU.

    Raises:
        ImportError: If onnxruntime is not installed.
    """
    session = onnx_session(path)
    outputs = session.run(None, {'input': inputs.detach().cpu().numpy()})
    return [torch.from_numpy(np.asarray(output)) for output in outputs]
