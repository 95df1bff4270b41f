#!/usr/bin/env bash
# Distributed training with torchrun, as mmdet's own tools/dist_train.sh:
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py arguments]
# The launcher and its environment variables: tools/dist_launch.sh.
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
