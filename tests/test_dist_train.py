"""``bash tools/dist_train.sh CONFIG 2`` on the CPU: two gloo processes
train a small shared-basis Faster R-CNN with the orthogonality
regularization for a few iterations, and the shared bases end identical on
both ranks and in the checkpoint."""
import json
import os
import os.path as osp
import socket
import sys

import pytest
import torch

from dataset_converters.synthetic_coco import CLASSES, make_synthetic_coco
from process_group import run_process_group

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
DEMO = osp.join(ROOT, 'configs', 'demo',
                'faster-rcnn_r18-s8u1_fpn_synthetic.py')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def write_config(tmp_path, data_root: str) -> str:
    """The demo detector (SharedBasisResNet-18, S8U1, orthogonality hook) on
    8 synthetic 64 x 64 images, 2 per process, 2 epochs: 4 iterations."""
    config = tmp_path / 'dist_config.py'
    config.write_text(f'''
_base_ = {DEMO!r}
custom_imports = dict(
    imports=['sharedbasis_mm', 'dist_bases_hook'], allow_failed_imports=False)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root={data_root!r},
        ann_file='annotations/instances_train.json'))
train_cfg = dict(max_epochs=2, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
custom_hooks = [
    dict(type='OrthogonalityLossHook', loss_weight=10., log_interval=1),
    dict(type='SaveBasesHook', out_dir={str(tmp_path)!r}),
]
''')
    return str(config)


def test_dist_train_two_cpu_processes(tmp_path):
    data_root = tmp_path / 'data'
    os.makedirs(data_root / 'annotations')
    coco = make_synthetic_coco(str(data_root), 'train', 8, image_size=(64, 64))
    with open(data_root / 'annotations' / 'instances_train.json', 'w') as f:
        json.dump(coco, f)
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    config = write_config(tmp_path, str(data_root))
    work_dir = tmp_path / 'work'
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(free_port()),
        CUDA_VISIBLE_DEVICES='',  # the CPU path, also on a GPU machine
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join([HERE, os.environ.get('PYTHONPATH', '')]))
    output = run_process_group(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
         '--work-dir', str(work_dir)],
        env,
        timeout=420,
        cwd=ROOT)
    assert 'runs on the CPU with the gloo backend' in output

    saved = {(rank, when): torch.load(
        tmp_path / f'bases_rank{rank}_{when}.pt', weights_only=False)
             for rank in (0, 1) for when in ('before', 'after')}
    for (rank, when), state in saved.items():
        assert state['world_size'] == 2
        assert state['wrapper'] == 'MMDistributedDataParallel'
        assert state['iters'] == (4 if when == 'after' else 0)
    names = saved[0, 'after']['bases'].keys()
    assert len(names) == 4  # one basis per residual group
    checkpoint = torch.load(
        work_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)
    for name in names:
        rank0 = saved[0, 'after']['bases'][name]
        # trained, identically on both ranks, and so checkpointed
        assert not torch.equal(rank0, saved[0, 'before']['bases'][name])
        assert torch.equal(rank0, saved[1, 'after']['bases'][name])
        # the basis' name is its state-dict key (one key per basis)
        assert torch.equal(rank0, checkpoint['state_dict'][name]), name
    # the regularization was part of the trained loss
    assert 'loss_orth' in output
