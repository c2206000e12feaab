#!/bin/sh
# Every test: install what is missing, then the normal build's tests and the
# same tests under ASan+UBSan.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -j"$(nproc)" test
make -j"$(nproc)" san
