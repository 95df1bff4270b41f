"""EvaluationProgressHook: a progress bar over validation and test batches."""
import re

import pytest
from mmengine.evaluator import BaseMetric
from mmengine.registry import HOOKS

import sharedbasis_mm  # noqa: F401
from sharedbasis_mm.hooks import EvaluationProgressHook
from tiny_shared_basis_net import (RandomImages, TinySharedBasisNet,
                                   build_runner)


class BatchCount(BaseMetric):
    """Counts the predictions it is given."""

    def process(self, data_batch, data_samples) -> None:
        self.results.append(len(data_samples))

    def compute_metrics(self, results) -> dict:
        return dict(predictions=sum(results))


def test_bar_counts_every_batch_of_validation_and_test(tmp_path, capsys):
    loader = dict(
        dataset=RandomImages(10),
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        batch_size=4,
        num_workers=0)
    runner = build_runner(
        TinySharedBasisNet(),
        str(tmp_path),
        custom_hooks=[dict(type='EvaluationProgressHook', bar_width=10)],
        max_iters=2,
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=2),
        val_dataloader=loader,
        val_cfg=dict(),
        val_evaluator=[BatchCount()],
        test_dataloader=loader,
        test_cfg=dict(),
        test_evaluator=[BatchCount()])
    runner.train()
    metrics = runner.test()
    assert metrics == dict(predictions=10)
    out = capsys.readouterr().out
    # 10 images in batches of 4: 3 batches, once for the validation after
    # training and once for the test
    assert len(re.findall(r'\] 1/3, [0-9.]+ task/s', out)) == 2
    assert len(re.findall(r'\[>{10}\] 3/3, [0-9.]+ task/s, elapsed: \d+s, '
                          r'ETA: +0s\n', out)) == 2
    # the logger hook logs every batch here: each of its lines starts a line
    log_line = r'\d\d/\d\d \d\d:\d\d:\d\d - mmengine'
    logs = [match.start() for match in re.finditer(log_line, out)]
    assert len(logs) > 6
    assert all(index == 0 or out[index - 1] == '\n' for index in logs)


def test_hook_is_registered_and_checks_its_width():
    hook = HOOKS.build(dict(type='EvaluationProgressHook'))
    assert isinstance(hook, EvaluationProgressHook)
    for width, error in ((0, ValueError), (2.5, TypeError)):
        with pytest.raises(error, match=f'bar_width={width!r}'):
            EvaluationProgressHook(bar_width=width)
