"""A progress bar over the batches of a validation or a test."""
import sys
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook, LoggerHook
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader

from ..registry import HOOKS
from ..utils.validation import check_positive_int


@HOOKS.register_module()
class EvaluationProgressHook(Hook):
    """Show mmengine's progress bar while the model is validated or tested.

    mmengine's ``LoggerHook`` logs every ``interval`` iterations, so an
    evaluation shorter than the interval shows nothing until its metrics.
    This hook draws a bar over the batches of the validation and the test
    dataloaders (done / all, batches per second, ETA) on the main process.
    It runs before the ``LoggerHook`` and ends the bar's line at the last
    batch and wherever the ``LoggerHook`` is about to log, so that log lines
    start on lines of their own.

    Args:
        bar_width (int): Width of the bar in characters. Defaults to 50.
    """

    priority = 'NORMAL'

    def __init__(self, bar_width: int = 50) -> None:
        self.bar_width = check_positive_int(
            'bar_width', bar_width, owner=type(self).__name__)
        self._bar: Optional[ProgressBar] = None
        self._log_interval = 0

    def _start(self, runner, dataloader: DataLoader) -> None:
        if not is_main_process():
            return
        self._log_interval = next(
            (hook.interval
             for hook in runner.hooks if isinstance(hook, LoggerHook)), 0)
        # the stdout of now (ProgressBar's default is the one of import)
        self._bar = ProgressBar(
            len(dataloader), self.bar_width, file=sys.stdout)

    def _update(self, batch_idx: int) -> None:
        if self._bar is None:
            return
        self._bar.update()
        done = self._bar.completed >= self._bar.task_num
        if done or self.every_n_inner_iters(batch_idx, self._log_interval):
            self._bar.file.write('\n')
            self._bar.file.flush()
        if done:
            self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, runner.val_dataloader)

    def before_test_epoch(self, runner) -> None:
        self._start(runner, runner.test_dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._update(batch_idx)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._update(batch_idx)
