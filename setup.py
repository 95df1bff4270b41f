import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# What mim (``mim train/test/search sharedbasis_mm``) and mmengine's
# ``sharedbasis_mm::`` config paths look for in ``sharedbasis_mm/.mim``.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
MIM_DIR = osp.join('sharedbasis_mm', '.mim')


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(ROOT, 'sharedbasis_mm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(path: str = 'requirements.txt') -> list:
    with open(osp.join(ROOT, path)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def _remove(path: str) -> None:
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def link_mim_files() -> None:
    """Symlink ``MIM_FILES`` into ``sharedbasis_mm/.mim`` of the checkout.

    For an editable install, whose package is the checkout's folder: the
    links follow every change of the configs and tools.
    """
    mim_dir = osp.join(ROOT, MIM_DIR)
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        link = osp.join(mim_dir, name)
        _remove(link)
        os.symlink(osp.relpath(osp.join(ROOT, name), mim_dir), link)


class BuildPyWithMim(build_py):
    """``build_py`` that copies ``MIM_FILES`` into the built package's
    ``.mim`` (wheels, and installs from a wheel or an sdist)."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim_dir = osp.join(self.build_lib, MIM_DIR)
        os.makedirs(mim_dir, exist_ok=True)
        ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
        for name in MIM_FILES:
            source, target = osp.join(ROOT, name), osp.join(mim_dir, name)
            _remove(target)
            if osp.isdir(source):
                shutil.copytree(source, target, ignore=ignore)
            else:
                shutil.copyfile(source, target)


if {'develop', 'editable_wheel'} & set(sys.argv):
    link_mim_files()

setup(
    name='sharedbasis_mm',
    version=read_version(),
    description='Shared filter bases and tied block convolution for '
    'MMDetection and MMPretrain',
    long_description=open(osp.join(ROOT, 'README.md')).read()
    if osp.exists(osp.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    install_requires=read_requirements(),
    extras_require={'optional': read_requirements('requirements/optional.txt')},
    cmdclass={'build_py': BuildPyWithMim},
    license='Apache License 2.0',
    zip_safe=False,
)
