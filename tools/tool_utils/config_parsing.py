"""Parse many configs in one process without re-reading mim's metafiles."""
import functools
from contextlib import contextmanager
from typing import Iterator

import mmengine.config.utils


@contextmanager
def package_metafiles_read_once() -> Iterator[None]:
    """Within the context, each file that mmengine's config loader reads
    through ``mmengine.config.utils.load`` is read once.

    mmengine reads a package's ``model-index.yml`` and all its metafiles
    again for every ``mmdet::`` or ``mmpretrain::`` base of every config it
    parses, most of the time of parsing a detection config. Use it around
    loops over installed configs, which do not change while they are read.
    """
    load = mmengine.config.utils.load
    mmengine.config.utils.load = functools.lru_cache(maxsize=None)(load)
    try:
        yield
    finally:
        mmengine.config.utils.load = load
