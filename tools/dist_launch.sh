#!/usr/bin/env bash
# torchrun over one of the project's tools, for tools/dist_train.sh and
# tools/dist_test.sh:
#   bash tools/dist_launch.sh TOOL NUM_PROCESSES [TOOL arguments]
# One process per GPU (NCCL); on a machine without a GPU, NUM_PROCESSES CPU
# processes (gloo, see sharedbasis_mm/utils/openmmlab_tools.py).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT, as in mmdet.
# PYTHON: the interpreter; defaults to the project's .venv, else python3.
TOOL=$1
NPROC=$2
if ! [[ "$NPROC" =~ ^[1-9][0-9]*$ ]]; then
    echo "$(basename "$0"): NUM_PROCESSES must be a positive integer," \
        "got '$NPROC'" >&2
    exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$PYTHON" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

PYTHONPATH="$ROOT":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$ROOT/tools/$TOOL" \
    "${@:3}" \
    --launcher pytorch
