#!/usr/bin/env bash
# Multi-process training, upstream style. Usage:
#   ./dist_train.sh <nproc_per_node> <config.yaml> [more main.py flags or key=value overrides]
# e.g. ./dist_train.sh 4 ./configs/gaitgraph2/gaitgraph2.yaml --log_to_file
# Pick GPUs with CUDA_VISIBLE_DEVICES=0,1,...; on a machine without CUDA the processes use gloo on CPU.
# Multi-node: run torchrun directly (see README.md, "Distributed training").
set -euo pipefail
NPROC=${1:?usage: $0 <nproc_per_node> <config.yaml> [flags...]}
CFG=${2:?usage: $0 <nproc_per_node> <config.yaml> [flags...]}
shift 2
MASTER_PORT=${MASTER_PORT:-$((12000 + RANDOM % 20000))}
exec torchrun --nproc_per_node="$NPROC" --master_port="$MASTER_PORT" \
    fastposegait/main.py --cfgs "$CFG" --phase train "$@"
