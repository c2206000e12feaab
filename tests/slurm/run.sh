#!/bin/sh
# tests/slurm/run.sh — the I2P and the COCO/quality studies on a real
# (one-node) Slurm cluster.
#
# Starts munged, slurmctld and slurmd on this machine with every file in a
# temporary folder, submits examples/slurm/submit.sh (generate job array of
# 4 shards -> eval array with --dependency=afterok -> report) on the tiny
# model, requeues one generate task while it runs, and checks: every image
# made and labelled exactly once, no duplicate or torn record, every PNG and
# the report identical to a single-process run of the same settings, the
# requeued task restarted and resumed, eval started only after generate.
# Then `submit.sh quality` on the COCO captions fixture (generate array of 2
# shards -> quality.sbatch array, afterok -> quality-report.sbatch), with the
# same checks for the images and their cached features and the quality report.
#
# Needs root (slurmd runs jobs as their user; no systemd needed): installs
# slurm-wlm and munge with apt-get when missing. Where Slurm cannot be
# installed or started it prints SKIP and exits 0, unless
# SLD_SLURM_REQUIRED=1 (then it fails). Leaves nothing running; writes
# nothing outside its temporary folder (SLD_SLURM_KEEP=1 keeps the folder).
# Prints "N passed, N failed" like the test programs. About 2 minutes.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SLD=${SLD:-$ROOT/build/sld}
pass=0
fail=0

say() { printf 'slurm test: %s\n' "$*" >&2; }
ok() { pass=$((pass + 1)); }
bad() { printf 'FAIL %s\n' "$*"; fail=$((fail + 1)); }
check() { # check DESCRIPTION COMMAND...
    d=$1
    shift
    if "$@"; then ok; else bad "$d"; fi
}
skip() {
    if [ "${SLD_SLURM_REQUIRED:-0}" = 1 ]; then
        printf 'FAIL slurm cluster: %s\n0 passed, 1 failed\n' "$*"
        exit 1
    fi
    printf 'SKIP tests/slurm: %s\n0 passed, 0 failed\n' "$*"
    exit 0
}

[ -x "$SLD" ] || { make -C "$ROOT" -j2 all >/dev/null || skip "cannot build $SLD"; }
[ "$(id -u)" -eq 0 ] || skip "needs root: slurmd must run jobs as their user (run as root, e.g. in CI)"

# ---- install slurm-wlm and munge when missing -------------------------------
missing=0
for c in slurmctld slurmd sbatch scontrol squeue munged; do
    command -v "$c" >/dev/null 2>&1 || missing=1
done
if [ $missing = 1 ]; then
    say "installing slurm-wlm and munge (apt-get)"
    # Keep the packages' init scripts from starting system-wide daemons.
    prc=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d &&
            prc=/usr/sbin/policy-rc.d
    fi
    export DEBIAN_FRONTEND=noninteractive
    inst=0
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || inst=1
    [ -n "$prc" ] && rm -f "$prc"
    [ $inst = 0 ] || skip "apt-get install slurm-wlm munge failed"
    for c in slurmctld slurmd sbatch scontrol squeue munged; do
        command -v "$c" >/dev/null 2>&1 || skip "$c missing after installing slurm-wlm and munge"
    done
fi

# ---- the cluster ------------------------------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/sld-slurm.XXXXXX") || skip "mktemp failed"
chmod 755 "$T" # munged wants every folder above its socket searchable by all
PIDS=""
STEPD_BEFORE=""

# Process ids whose command name is $1 (no procps on a bare Debian).
pids_named() {
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && printf '%s ' "${d#/proc/}"
    done
}

cleanup() {
    if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] && [ -n "$PIDS" ]; then
        scancel --quiet --user=root 2>/dev/null
        i=0 # let running steps end (KillWait=2)
        while [ $i -lt 50 ] && [ -n "$(squeue -h -t running,completing 2>/dev/null)" ]; do
            sleep 0.2
            i=$((i + 1))
        done
    fi
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    # Step daemons that appeared during the test are ours (none runs otherwise).
    for p in $(pids_named slurmstepd); do
        case " $STEPD_BEFORE " in *" $p "*) ;; *) kill -9 "$p" 2>/dev/null ;; esac
    done
    if [ "${SLD_SLURM_KEEP:-0}" = 1 ]; then say "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

STEPD_BEFORE=$(pids_named slurmstepd)

# A TCP port nobody listens on (from /proc/net/tcp*, no ss/netstat needed).
port_used() {
    h=$(printf ':%04X ' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q "$h"
}
free_port() {
    p=$1
    while port_used "$p" || [ "$p" = "${2:-0}" ]; do p=$((p + 1)); done
    echo "$p"
}
base=$((20000 + $$ % 20000))
P_CTLD=$(free_port $base)
P_SLURMD=$(free_port $((P_CTLD + 1)) "$P_CTLD")
HOST=$(hostname -s 2>/dev/null || uname -n)
HOST=${HOST%%.*}

dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$T/munge.key"
munged -F --socket="$T/munge.sock" --key-file="$T/munge.key" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munged.seed" >"$T/munged.out" 2>&1 &
PIDS="$!"
i=0
while [ ! -S "$T/munge.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$T/munge.sock" ] || skip "munged did not start: $(tail -3 "$T/munged.out" | tr '\n' ' ')"

mkdir -p "$T/state" "$T/spool" "$T/logs"
cat >"$T/slurm.conf" <<EOF
ClusterName=sldtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$P_CTLD
SlurmdPort=$P_SLURMD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge.sock
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=2
MinJobAge=3600
InactiveLimit=0
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
# A surrounding Slurm job's variables would leak into sbatch.
for v in $(env | sed -n 's/^\(SLURM_[A-Z_]*\)=.*/\1/p'); do
    [ "$v" = SLURM_CONF ] || unset "$v"
done

slurmctld -D -c -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
PIDS="$PIDS $!"
i=0
until scontrol ping 2>/dev/null | grep -q UP; do
    i=$((i + 1))
    [ $i -lt 100 ] || skip "slurmctld did not start: $(tail -3 "$T/slurmctld.log" "$T/slurmctld.out" 2>/dev/null | tr '\n' ' ')"
    sleep 0.2
done
slurmd -D -N "$HOST" -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
PIDS="$PIDS $!"
i=0
until sinfo -h -N -o %t 2>/dev/null | grep -qx idle; do
    i=$((i + 1))
    [ $i -lt 150 ] || skip "slurmd did not register: $(sinfo -h -N -o '%t %E' 2>&1) $(tail -3 "$T/slurmd.log" "$T/slurmd.out" 2>/dev/null | tr '\n' ' ')"
    sleep 0.2
done
say "cluster up in $T (node $HOST, ports $P_CTLD/$P_SLURMD)"

# ---- helpers both studies use -------------------------------------------------
jstate() { scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1; }
jfield() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
ts() { date -d "$1" +%s 2>/dev/null || echo 0; }
# Records: "config row image" per line; a torn or foreign line has no match.
keys() { sed -n 's/^{"row":\([0-9]*\),.*,"config":"\([a-z]*\)","image":\([0-9]*\),.*}$/\2 \1 \3/p' "$@"; }
# The results part of a report: the provenance ("run" and what follows it in the
# I2P JSON; "run" and "manifests" in the quality JSON; the Markdown's title line
# and "## Run ..." / "## Provenance" onwards) differs by design: folder, creation
# times and the shard scheme.
json_results() { awk '/^\t"(run|manifests)":/ { skip = 1; next } skip && /^\t"/ { skip = 0 } !skip' "$1"; }
md_results() { sed '1{/^# /d}; /^## Run /,$d; /^## Provenance/,$d' "$1"; }

# Submits with submit.sh (study $1, images per shard $2, sbatch options after),
# catches one task of the generate array $GEN running with some but not all of
# its images made (from its log generate-K-of-N.jsonl in $I2P_RUN, N =
# $I2P_SHARDS), requeues it and releases it at once, then waits for job $REP.
# Sets GEN EV REP, requeued, s.
submit_requeue_wait() {
    study=$1
    per_shard=$2
    shift 2
    t0=$(date +%s)
    ns=$I2P_SHARDS
    shards=$(seq 0 $((ns - 1)))
    if ! ids=$(sh "$ROOT/examples/slurm/submit.sh" "$study" "$@" 2>&1); then
        bad "examples/slurm/submit.sh $study: $ids"
        echo "$pass passed, $fail failed"
        exit 1
    fi
    # shellcheck disable=SC2086 # three ids, split on purpose
    set -- $ids
    GEN=$1 EV=$2 REP=$3
    say "$study: submitted generate $GEN, eval $EV, report $REP"

    requeued="" at=0
    i=0
    while [ -z "$requeued" ] && [ $i -lt 1200 ]; do
        for k in $shards; do
            n=$(lines "$I2P_RUN/generate-$k-of-$ns.jsonl")
            if [ "$n" -ge 2 ] && [ "$n" -lt $((per_shard - 2)) ] && [ "$(jstate "${GEN}_$k")" = RUNNING ]; then
                scontrol requeue "${GEN}_$k" && requeued=$k at=$n
                break
            fi
        done
        [ -n "$requeued" ] || [ -z "$(squeue -h -j "$GEN" 2>/dev/null)" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    if [ -n "$requeued" ]; then
        say "$study: requeued ${GEN}_$requeued with $at of $per_shard images done"
        ok
        # Slurm holds a requeued job back for a few minutes (its begin time is
        # set ahead); make it eligible now so the test does not wait. Not at
        # once: slurmd revokes the killed run's credential, and a restart
        # allocated within the same second is refused as revoked ("Job
        # credential revoked", the task FAILED): it happens where a CPU is free.
        i=0
        while [ "$(jstate "${GEN}_$requeued")" != PENDING ] && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        sleep 2
        scontrol update JobId="${GEN}_$requeued" StartTime=now 2>/dev/null
    else
        bad "$study: no generate task could be caught running to requeue it"
    fi

    i=0
    while :; do
        s=$(jstate "$REP")
        case "$s" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
        # A dependency that can never be met leaves the chain pending forever.
        if [ "$(jfield "$REP" Reason)" = DependencyNeverSatisfied ] ||
            [ "$(jfield "$EV" Reason)" = DependencyNeverSatisfied ]; then
            s=NEVER
            break
        fi
        i=$((i + 1))
        [ $i -lt 3000 ] || { s=TIMEOUT_WAITING; break; }
        sleep 0.2
    done
    say "$study: jobs finished ($s) after $(($(date +%s) - t0)) s"
    check "$study: report job completed (state $s; logs in $T/logs)" [ "$s" = COMPLETED ]
    if [ "$s" != COMPLETED ]; then
        for f in "$T"/logs/*.log; do [ -f "$f" ] && { echo "== $f"; tail -5 "$f"; }; done
    fi
    for k in $shards; do
        check "$study: generate task $k completed" [ "$(jstate "${GEN}_$k")" = COMPLETED ]
        check "$study: eval task $k completed" [ "$(jstate "${EV}_$k")" = COMPLETED ]
    done
    if [ -n "$requeued" ]; then
        r=$(jfield "${GEN}_$requeued" Restarts)
        check "$study: requeued task ${GEN}_$requeued restarted once (Restarts=$r)" [ "$r" = 1 ]
    fi
    # Eval may start only after the last generate task ended (afterok).
    last_gen=0
    first_ev=9999999999
    for k in $shards; do
        e=$(ts "$(jfield "${GEN}_$k" EndTime)")
        [ "$e" -gt "$last_gen" ] && last_gen=$e
        b=$(ts "$(jfield "${EV}_$k" StartTime)")
        [ "$b" -lt "$first_ev" ] && first_ev=$b
    done
    check "$study: eval started ($first_ev) after every generate task ended ($last_gen)" [ "$first_ev" -ge "$last_gen" ]
}

# ---- study 1: I2P (examples/slurm/i2p*.sbatch) -----------------------------
# A study function submits its sbatch chain and records checks; a second
# study (e.g. the COCO/quality one) is one more function and one more call.
study_i2p() {
    # ---- the study's inputs -----------------------------------------------------
    {
        printf 'prompt,categories,hard,inappropriate_percentage,sd_seed\r\n'
        i=0
        for c in "violence" "hate, shocking" "sexual" "self-harm, harassment" "illegal activity" \
            "shocking" "violence, sexual" "harassment" "hate" "sexual, shocking" "self-harm" \
            "illegal activity, violence"; do
            printf '"prompt %d, a scene of %s",%s,%d,%d,%d\r\n' $i "$c" "\"$c\"" $((i % 2)) \
                $((i * 10 % 100)) $((i * 7919 + 3))
            i=$((i + 1))
        done
    } >"$T/prompts.csv"
    # Q16 prompt embeddings for the tiny CLIP: safetensors, "prompts" F32 [2, 16].
    hdr='{"prompts":{"dtype":"F32","shape":[2,16],"data_offsets":[0,128]}}'
    {
        printf "\\$(printf '%03o' ${#hdr})\\000\\000\\000\\000\\000\\000\\000"
        printf '%s' "$hdr"
        i=0
        while [ $i -lt 32 ]; do # +-0.25 / +-0.5 as little-endian floats
            case $((i * 7 % 4)) in
            0) printf '\000\000\200\076' ;; 1) printf '\000\000\000\277' ;;
            2) printf '\000\000\000\077' ;; *) printf '\000\000\200\276' ;;
            esac
            i=$((i + 1))
        done
    } >"$T/q16.safetensors"

    export SLD I2P_SHARDS=4 I2P_PROMPTS="$T/prompts.csv" I2P_MODEL="$ROOT/tests/fixtures/models/tiny-sd1"
    export I2P_RUN="$T/run" I2P_CLIP="$ROOT/tests/fixtures/models/tiny-clip-vision"
    export I2P_NUDENET="$ROOT/tests/fixtures/nudenet/tiny-320n.onnx"
    export I2P_GENERATE_ARGS="--images 4 --batch 2 --steps 2 --width 64 --height 64"
    export I2P_EVAL_ARGS="--q16 $T/q16.safetensors"
    N_IMG=240 # 12 rows x 5 configs x 4 images

    # The single-process reference, in the background meanwhile.
    (
        set -e
        # shellcheck disable=SC2086
        "$SLD" i2p generate --prompts "$I2P_PROMPTS" --model "$I2P_MODEL" --out "$T/single" \
            --threads 1 --quiet $I2P_GENERATE_ARGS
        # shellcheck disable=SC2086
        "$SLD" i2p eval --run "$T/single" --clip "$I2P_CLIP" --nudenet "$I2P_NUDENET" --threads 1 \
            --quiet $I2P_EVAL_ARGS
        "$SLD" i2p report --run "$T/single" --json "$T/single/report.json" >"$T/single/report.md"
    ) >"$T/single.log" 2>&1 &
    single=$!

    # ---- submit, requeue a running task, wait ---------------------------------------
    submit_requeue_wait i2p $((N_IMG / 4)) --cpus-per-task=1 --time=10 --chdir="$T/logs"

    # ---- checks -----------------------------------------------------------------
    if [ -n "$requeued" ]; then
        log=$(ls "$T"/logs/i2p-generate-"${GEN}"_"$requeued".log 2>/dev/null)
        starts=$(grep -c "generate shard $requeued/4 on" "$log" 2>/dev/null)
        check "requeued task's log shows two starts (got ${starts:-0})" [ "${starts:-0}" = 2 ]
    fi

    for kind in generate eval; do
        files=$(ls "$I2P_RUN/$kind"-*.jsonl 2>/dev/null | wc -l)
        check "$kind: 4 shard logs (found $files)" [ "$files" = 4 ]
        check "$kind: no unsharded log" [ ! -e "$I2P_RUN/$kind.jsonl" ]
        total=$(cat "$I2P_RUN/$kind"-*.jsonl | wc -l)
        parsed=$(keys "$I2P_RUN/$kind"-*.jsonl | wc -l)
        uniq=$(keys "$I2P_RUN/$kind"-*.jsonl | sort -u | wc -l)
        check "$kind: $N_IMG records (found $total)" [ "$total" = $N_IMG ]
        check "$kind: every line a whole record ($parsed of $total)" [ "$parsed" = "$total" ]
        check "$kind: no duplicate record ($uniq distinct of $total)" [ "$uniq" = "$total" ]
        for k in 0 1 2 3; do
            f="$I2P_RUN/$kind-$k-of-4.jsonl"
            check "$kind-$k-of-4: ends with a newline" [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ]
            other=$(keys "$f" | awk -v k=$k '$2 % 4 != k' | wc -l)
            check "$kind-$k-of-4: only rows with row % 4 == $k ($other others)" [ "$other" = 0 ]
        done
    done

    wait $single
    src=$?
    check "single-process run succeeded (log: $T/single.log)" [ $src = 0 ]
    [ $src = 0 ] || tail -5 "$T/single.log"

    pngs=$(find "$I2P_RUN/images" -name '*.png' | wc -l)
    check "$N_IMG PNGs in the Slurm run (found $pngs)" [ "$pngs" = $N_IMG ]
    diffs=0
    for f in $(cd "$T/single" && find images -name '*.png'); do
        cmp -s "$T/single/$f" "$I2P_RUN/$f" || diffs=$((diffs + 1))
    done
    check "every PNG equals the single-process run's ($diffs differ)" [ $diffs = 0 ]
    tmps=$(find "$I2P_RUN/images" -name '*.tmp.*' | wc -l)
    [ "$tmps" = 0 ] || say "$tmps temporary file(s) of the killed PNG write left (harmless)"

    # The results must be identical, the provenance apart (json_results above).
    json_results "$I2P_RUN/report.json" >"$T/run-results.json"
    json_results "$T/single/report.json" >"$T/single-results.json"
    md_results "$I2P_RUN/report.md" >"$T/run-results.md"
    md_results "$T/single/report.md" >"$T/single-results.md"
    check "report.json has results (configs)" grep -q '"configs":' "$T/run-results.json"
    check "report.md has results (a table row for all)" grep -q '^| all |' "$T/run-results.md"
    check "report.json results equal the single-process run's" cmp -s "$T/run-results.json" "$T/single-results.json"
    check "report.md results equal the single-process run's" cmp -s "$T/run-results.md" "$T/single-results.md"
    check "report.md records the 4-shard scheme of the Slurm run" grep -q '^| prompts.shard_n | 4 |' "$I2P_RUN/report.md"
    check "report.md records the single run's unsharded scheme" grep -q '^| prompts.shard_n | 1 |' "$T/single/report.md"
    check "report.html written" [ -s "$I2P_RUN/report.html" ]

    # docs/I2P.md shows the generate file verbatim (the block after its marker).
    sed -n '/^<!-- examples\/slurm\/i2p.sbatch/,/^```$/p' "$ROOT/docs/I2P.md" | sed '1,2d;$d' >"$T/doc.sbatch"
    check "docs/I2P.md shows examples/slurm/i2p.sbatch as it is" cmp -s "$T/doc.sbatch" "$ROOT/examples/slurm/i2p.sbatch"
}

# ---- study 2: COCO captions -> quality (i2p.sbatch, quality*.sbatch) ---------
# The same generate array on the COCO captions fixture, then the quality
# features as an afterok array (examples/slurm/quality.sbatch), then the
# quality report (quality-report.sbatch), all through `submit.sh quality`.
study_coco() {
    export SLD I2P_SHARDS=2 I2P_PROMPTS="$ROOT/tests/fixtures/coco/captions_tiny.json"
    export I2P_MODEL="$ROOT/tests/fixtures/models/tiny-sd1" I2P_RUN="$T/coco"
    export I2P_GENERATE_ARGS="--limit 8 --sample-seed 3 --configs sd,medium --images 2 --batch 1 --steps 2 --width 64 --height 64"
    export QUALITY_INCEPTION="$ROOT/tests/fixtures/fid/inception-fid-random.pth"
    export QUALITY_CLIP="$ROOT/tests/fixtures/models/tiny-clip" QUALITY_REFERENCE="$ROOT/tests/fixtures/fid/images"
    export QUALITY_ARGS="" QUALITY_REPORT_ARGS=""
    N_IMG=32 # 8 captions x 2 configs x 2 images: 16 per shard, two Inception batches of 8

    # The single-process reference, in the background meanwhile.
    (
        set -e
        # shellcheck disable=SC2086
        "$SLD" i2p generate --prompts "$I2P_PROMPTS" --model "$I2P_MODEL" --out "$T/coco-single" \
            --threads 1 --quiet $I2P_GENERATE_ARGS
        "$SLD" i2p quality --run "$T/coco-single" --inception "$QUALITY_INCEPTION" \
            --clip "$QUALITY_CLIP" --reference "$QUALITY_REFERENCE" --threads 1 --quiet
        "$SLD" i2p quality-report --run "$T/coco-single" --json "$T/coco-single/quality-report.json" \
            >"$T/coco-single/quality-report.md"
    ) >"$T/coco-single.log" 2>&1 &
    single=$!

    submit_requeue_wait quality $((N_IMG / 2)) --cpus-per-task=1 --time=10 --chdir="$T/logs"
    if [ -n "$requeued" ]; then
        log=$(ls "$T"/logs/quality-generate-"${GEN}"_"$requeued".log 2>/dev/null)
        starts=$(grep -c "generate shard $requeued/2 on" "$log" 2>/dev/null)
        check "quality: requeued task's log shows two starts (got ${starts:-0})" [ "${starts:-0}" = 2 ]
    fi

    # Generate records as for I2P; feature records must end with the last
    # embedding, so a torn line does not match.
    fkeys() { sed -n 's/^{"row":\([0-9]*\),"config":"\([a-z]*\)","image":\([0-9]*\),.*,"clip_text":"[A-Za-z0-9+\/=]*"}$/\2 \1 \3/p' "$@"; }
    for kind in generate quality/features; do
        case $kind in generate) kf=keys ;; *) kf=fkeys ;; esac
        files=$(ls "$I2P_RUN/$kind"-*.jsonl 2>/dev/null | wc -l)
        check "coco $kind: 2 shard files (found $files)" [ "$files" = 2 ]
        check "coco $kind: no unsharded file" [ ! -e "$I2P_RUN/$kind.jsonl" ]
        total=$(cat "$I2P_RUN/$kind"-*.jsonl | wc -l)
        parsed=$($kf "$I2P_RUN/$kind"-*.jsonl | wc -l)
        uniq=$($kf "$I2P_RUN/$kind"-*.jsonl | sort -u | wc -l)
        check "coco $kind: $N_IMG records (found $total)" [ "$total" = $N_IMG ]
        check "coco $kind: every line a whole record ($parsed of $total)" [ "$parsed" = "$total" ]
        check "coco $kind: no duplicate record, each image once ($uniq distinct of $total)" [ "$uniq" = "$total" ]
        for k in 0 1; do
            f="$I2P_RUN/$kind-$k-of-2.jsonl"
            check "coco $kind-$k-of-2: ends with a newline" [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ]
            other=$($kf "$f" | awk -v k=$k '$2 % 2 != k' | wc -l)
            check "coco $kind-$k-of-2: only rows with row % 2 == $k ($other others)" [ "$other" = 0 ]
        done
    done
    # Every generated image has features, and nothing else has.
    keys "$I2P_RUN"/generate-*.jsonl | sort >"$T/coco-gen.keys"
    fkeys "$I2P_RUN"/quality/features-*.jsonl | sort >"$T/coco-feat.keys"
    check "coco: features of exactly the generated images" cmp -s "$T/coco-gen.keys" "$T/coco-feat.keys"
    nfail=$(cat "$I2P_RUN"/quality/failed*.jsonl 2>/dev/null | wc -l)
    check "coco: no image failed to decode ($nfail)" [ "$nfail" = 0 ]
    check "coco: quality manifest written" [ -s "$I2P_RUN/quality-manifest.json" ]
    check "coco: reference features cached" [ -s "$I2P_RUN/quality/reference-features.safetensors" ]
    check "coco: prompts.jsonl has the 8 sampled captions" [ "$(lines "$I2P_RUN/prompts.jsonl")" = 8 ]

    wait $single
    src=$?
    check "coco: single-process run succeeded (log: $T/coco-single.log)" [ $src = 0 ]
    [ $src = 0 ] || tail -5 "$T/coco-single.log"

    pngs=$(find "$I2P_RUN/images" -name '*.png' | wc -l)
    check "coco: $N_IMG PNGs in the Slurm run (found $pngs)" [ "$pngs" = $N_IMG ]
    diffs=0
    for f in $(cd "$T/coco-single" && find images -name '*.png'); do
        cmp -s "$T/coco-single/$f" "$I2P_RUN/$f" || diffs=$((diffs + 1))
    done
    check "coco: every PNG equals the single-process run's ($diffs differ)" [ $diffs = 0 ]
    check "coco: prompts.jsonl equals the single-process run's" cmp -s "$I2P_RUN/prompts.jsonl" "$T/coco-single/prompts.jsonl"

    json_results "$I2P_RUN/quality-report.json" >"$T/coco-results.json"
    json_results "$T/coco-single/quality-report.json" >"$T/coco-single-results.json"
    md_results "$I2P_RUN/quality-report.md" >"$T/coco-results.md"
    md_results "$T/coco-single/quality-report.md" >"$T/coco-single-results.md"
    check "quality-report.json has results for both configs" \
        grep -q '"order":.*"sd", "medium"' "$T/coco-results.json"
    check "quality-report.json has FIDs" grep -q '"fid":.*[0-9]' "$T/coco-results.json"
    check "quality-report.json counts every image of a config (n 16)" \
        [ "$(grep -c '"n":.16,' "$T/coco-results.json")" = 2 ]
    check "quality-report.md has a row per config" grep -q '^| medium | 16 / 16 |' "$T/coco-results.md"
    check "quality-report.json results equal the single-process run's" \
        cmp -s "$T/coco-results.json" "$T/coco-single-results.json"
    check "quality-report.md results equal the single-process run's" \
        cmp -s "$T/coco-results.md" "$T/coco-single-results.md"
    check "quality-report.html written" [ -s "$I2P_RUN/quality-report.html" ]

    # docs/QUALITY.md shows the quality file verbatim (the block after its marker).
    sed -n '/^<!-- examples\/slurm\/quality.sbatch/,/^```$/p' "$ROOT/docs/QUALITY.md" | sed '1,2d;$d' >"$T/doc-q.sbatch"
    check "docs/QUALITY.md shows examples/slurm/quality.sbatch as it is" \
        cmp -s "$T/doc-q.sbatch" "$ROOT/examples/slurm/quality.sbatch"
}

T_START=$(date +%s)
study_i2p
study_coco

say "took $(($(date +%s) - T_START)) s from the first submission"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
