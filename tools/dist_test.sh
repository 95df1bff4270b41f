#!/usr/bin/env bash
# Distributed testing with torchrun, as mmdet's own tools/dist_test.sh:
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py arguments]
# The launcher and its environment variables: tools/dist_launch.sh.
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$3" "$1" "$2" "${@:4}"
