"""Session settings of the tests.

``tools/`` goes on ``sys.path`` (after the installed packages): the tests
import ``tool_utils`` and ``dataset_converters`` as the tools do.

``make test`` runs the suite in pytest-xdist workers (``-n auto``, one per
core). Each worker then gets its share of the cores for torch and for the
processes it starts (``OMP_NUM_THREADS``), so that N workers do not run
N times as many threads as there are cores.

``metafiles_read_once``: parse many configs in a module without mmengine
re-reading mim's metafiles for each.
"""
import os
import sys

import pytest
import torch

from tool_loading import TOOLS

sys.path.append(TOOLS)
from tool_utils.config_parsing import package_metafiles_read_once  # noqa: E402


def pytest_configure(config) -> None:
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ['OMP_NUM_THREADS'] = str(threads)
        torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def metafiles_read_once():
    """For a module that parses many configs:
    ``pytestmark = pytest.mark.usefixtures('metafiles_read_once')``."""
    with package_metafiles_read_once():
        yield
