#!/bin/sh
# Submits a whole study as three chained Slurm jobs and prints their ids:
#   sh submit.sh [i2p] ...      generate (array of I2P_SHARDS tasks, i2p.sbatch)
#                               -> eval (array, afterok, i2p-eval.sbatch)
#                               -> report (afterok, i2p-report.sbatch)
#   sh submit.sh quality ...    generate (the same array on e.g. COCO captions)
#                               -> quality features (array, afterok, quality.sbatch)
#                               -> quality report (afterok, quality-report.sbatch)
# Other arguments are extra sbatch options for all three (--partition, --account, --chdir ...).
# Settings: the environment variables that the .sbatch files list.
#   I2P_SHARDS=16 I2P_RUN=/shared/run sh examples/slurm/submit.sh --partition=cpu
#   I2P_PROMPTS=/shared/captions_val2014.json I2P_RUN=/shared/coco-run \
#     I2P_GENERATE_ARGS="--limit 2000 --sample-seed 0 --images 1" \
#     QUALITY_INCEPTION=... QUALITY_CLIP=... QUALITY_REFERENCE=... \
#     sh examples/slurm/submit.sh quality --partition=cpu
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
study=i2p
case "${1:-}" in
i2p | quality) study=$1 && shift ;;
-*| "") ;;
*)
    echo "submit.sh: unknown study '$1' (i2p or quality; sbatch options start with -)" >&2
    exit 2
    ;;
esac
N=${I2P_SHARDS:-16}
export I2P_SHARDS="$N"
if [ "$study" = quality ]; then
    # the generate array under its own name, so its logs do not mix with an I2P run's
    gen=$(sbatch --parsable --array="0-$((N - 1))" --job-name=quality-generate \
        --output='quality-generate-%A_%a.log' "$@" "$dir/i2p.sbatch")
    gen=${gen%%;*} # "id;cluster" on multi-cluster sites
    ev=$(sbatch --parsable --array="0-$((N - 1))" --dependency="afterok:$gen" "$@" "$dir/quality.sbatch")
    ev=${ev%%;*}
    rep=$(sbatch --parsable --dependency="afterok:$ev" "$@" "$dir/quality-report.sbatch")
else
    gen=$(sbatch --parsable --array="0-$((N - 1))" "$@" "$dir/i2p.sbatch")
    gen=${gen%%;*}
    ev=$(sbatch --parsable --array="0-$((N - 1))" --dependency="afterok:$gen" "$@" "$dir/i2p-eval.sbatch")
    ev=${ev%%;*}
    rep=$(sbatch --parsable --dependency="afterok:$ev" "$@" "$dir/i2p-report.sbatch")
fi
rep=${rep%%;*}
echo "$gen $ev $rep"
