from .evaluation_progress_hook import EvaluationProgressHook
from .gradient_flow_hook import GradientFlowHook
from .orthogonality_loss_hook import OrthogonalityLossHook

__all__ = [
    'OrthogonalityLossHook', 'GradientFlowHook', 'EvaluationProgressHook'
]
