#!/bin/sh
# Submits the whole I2P study as three chained Slurm jobs and prints their ids:
#   generate (array of I2P_SHARDS tasks) -> eval (array, afterok) -> report (afterok).
# Arguments are extra sbatch options for all three (--partition, --account, --chdir ...).
# Settings: the environment variables that i2p.sbatch and i2p-eval.sbatch list.
#   I2P_SHARDS=16 I2P_RUN=/shared/run sh examples/slurm/submit.sh --partition=cpu
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
N=${I2P_SHARDS:-16}
export I2P_SHARDS="$N"
gen=$(sbatch --parsable --array="0-$((N - 1))" "$@" "$dir/i2p.sbatch")
gen=${gen%%;*} # "id;cluster" on multi-cluster sites
ev=$(sbatch --parsable --array="0-$((N - 1))" --dependency="afterok:$gen" "$@" "$dir/i2p-eval.sbatch")
ev=${ev%%;*}
rep=$(sbatch --parsable --dependency="afterok:$ev" "$@" "$dir/i2p-report.sbatch")
rep=${rep%%;*}
echo "$gen $ev $rep"
