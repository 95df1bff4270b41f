"""Helpers of the tests of the models of Tied Block Convolution's Tables
1-3 (TiedSE hosts, TiedResNeSt, Cityscapes): comparing configs with the mmdet
and mmpretrain configs they inherit; one thread per test module."""
import pytest
import torch


def without_scope(value):
    """A config value (dicts and lists, nested) without the ``_scope_`` keys
    that inheriting through ``mmdet::`` or ``mmpretrain::`` adds."""
    if isinstance(value, dict):
        return {
            k: without_scope(v)
            for k, v in value.items() if k != '_scope_'
        }
    if isinstance(value, (list, tuple)):
        return [without_scope(v) for v in value]
    return value


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """The test machine's cores are shared: one thread runs fastest (import
    it into a test module to use it there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
