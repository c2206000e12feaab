#!/bin/sh
# Every test: install what is missing, then the normal build's tests, the I2P
# study on a one-node Slurm cluster (tests/slurm/run.sh: installs slurm-wlm
# and munge when missing, needs root, skips otherwise; 1-3 minutes), and
# the same tests under ASan+UBSan.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -j"$(nproc)" test
sh tests/slurm/run.sh
make -j"$(nproc)" san
