#!/usr/bin/env bash
# Create the project's virtual environment with the verified stack.
#
# Usage: tools/install_env.sh VENV_DIR
#
# mmcv 2.1.0 ships as a source distribution only; it is built once with its
# compiled ops (MMCV_WITH_OPS=1) and the wheel is cached outside the clone, in
# $SHAREDBASIS_MM_CACHE (default ~/.cache/sharedbasis_mm), so a second install
# takes seconds.
set -euo pipefail

VENV=$(realpath -m "${1:-.venv}")
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE=${SHAREDBASIS_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sharedbasis_mm}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "[install_env] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade "pip>=23"

log "torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
$PIP install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
$PIP install -q "setuptools>=77,<81" wheel ninja numpy

PYTAG=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
WHEELS="$CACHE/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG"
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
        log "building mmcv $MMCV_VERSION with compiled ops (about 12 minutes on 2 cores)"
        BUILD=$(mktemp -d)
        $PIP download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
        tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
        # torch >= 2.14 headers need C++20; mmcv's setup.py forces C++14/17.
        sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' \
            "$BUILD/mmcv-$MMCV_VERSION/setup.py"
        mkdir -p "$WHEELS"
        (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps . -w "$BUILD/dist")
        mv "$BUILD"/dist/mmcv-*.whl "$WHEELS"/
        rm -rf "$BUILD"
    fi
    log "installing cached mmcv wheel from $WHEELS"
    $PIP install -q --no-deps "$WHEELS"/mmcv-*.whl
fi

log "mmengine, mmdet, mmpretrain and test tools"
$PIP install -q -r "$ROOT/requirements/verified.txt"
$PIP install -q --no-deps --no-build-isolation -e "$ROOT"

# mim and mmengine (``sharedbasis_mm::`` configs) look for the package's .mim
# in <site-packages>/sharedbasis_mm, the location of its dist-info, which an
# editable install (PEP 660) does not create: link it to the checkout's
# package, whose .mim setup.py links to configs/, tools/, model-index.yml.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sfn "$ROOT/sharedbasis_mm" "$SITE/sharedbasis_mm"

# openmim (requirements/mim.txt says why without its dependencies) and the
# optional tools of mmdet and mmpretrain, only if they change nothing of the
# verified stack: pip's dry run must install new packages only.
REPORT=$(mktemp)
EXTRAS=(-r "$ROOT/requirements/mim.txt" -r "$ROOT/requirements/optional.txt")
$PIP install -q --dry-run --report "$REPORT" "${EXTRAS[@]}"
CHANGED=$("$VENV/bin/python" - "$REPORT" <<'PY'
import json
import sys
from importlib.metadata import PackageNotFoundError, version

report = json.load(open(sys.argv[1]))
changed = []
for item in report['install']:
    name = item['metadata']['name']
    try:
        changed.append(f"{name} {version(name)} -> {item['metadata']['version']}")
    except PackageNotFoundError:
        pass
print(', '.join(changed))
PY
)
rm -f "$REPORT"
if [ -z "$CHANGED" ]; then
    log "openmim and the optional tools (requirements/{mim,optional}.txt)"
    $PIP install -q "${EXTRAS[@]}"
    $PIP install -q --no-deps "openmim==0.3.9"
else
    log "not installing openmim and requirements/optional.txt: they would change $CHANGED"
fi
"$VENV/bin/python" -c "import torch, mmcv, mmcv.ops, mmdet, mmpretrain; print('[install_env] ready: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmpretrain', mmpretrain.__version__)"
