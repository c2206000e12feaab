#!/bin/sh
# compare.sh — sld against PyTorch + diffusers on this machine, in one run:
# the UNet at SD 1.5 shape (batch 3, 64x64 latents: one SLD step) and the VAE
# decode at 512x512, both pinned to the same core, sld first and PyTorch
# right after, then the ratio PyTorch seconds / sld seconds.
#
# Needs python3 with torch (Debian: python3-torch) and diffusers (installed,
# or a source tree named by DIFFUSERS_SRC=/path/to/diffusers/src). Where
# either is missing it says so and exits 0: CI does not run it.
#
# Usage: sh bench/compare.sh [fp32|bf16 ...]     (default: fp32 bf16)
# Environment: CORE (the core to pin to, default 0), REPS (default 3),
# SLD_BENCH_MODEL (the random SD 1.5 folder, default /tmp/sld-bench-sd15,
# written with `sld debug make-random --arch sd15` when missing).
set -eu
cd "$(dirname "$0")/.."
CORE=${CORE:-0}
REPS=${REPS:-3}
MODEL=${SLD_BENCH_MODEL:-/tmp/sld-bench-sd15}
PRECS=${*:-fp32 bf16}

[ -n "${DIFFUSERS_SRC:-}" ] && export PYTHONPATH="$DIFFUSERS_SRC${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c 'import torch, diffusers' 2>/dev/null; then
    echo "compare.sh: skipped: python3 cannot import torch and diffusers" \
         "(apt-get install python3-torch; pip install diffusers, or DIFFUSERS_SRC=...)" >&2
    exit 0
fi
command -v taskset >/dev/null || { echo "compare.sh: skipped: taskset (util-linux) missing" >&2; exit 0; }

make -s all build/bench/bench_net
[ -f "$MODEL/unet/diffusion_pytorch_model.safetensors" ] ||
    build/sld debug make-random --arch sd15 -o "$MODEL"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "machine: $cpu, $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')/$(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') (family/model), pinned to core $CORE, 1 thread"
echo "torch $(python3 -c 'import torch; print(torch.__version__)'), diffusers $(python3 -c 'import diffusers; print(diffusers.__version__)')"

# sld: median seconds of the two cases, from bench_net's CSV
sld_secs() { # prec case
    awk -F, -v p="$1" -v c="$2" '$4 == p && $5 == c { print $6 }' "$TMPF"
}
TMPF=$(mktemp)
trap 'rm -f "$TMPF"' EXIT

printf '%-6s %-22s %10s %10s %8s\n' prec case sld_s torch_s ratio
for prec in $PRECS; do
    OMP_NUM_THREADS=1 taskset -c "$CORE" build/bench/bench_net --threads 1 --reps "$REPS" \
        --precision "$prec" --batch 3 >"$TMPF" 2>/dev/null
    torch_out=$(OMP_NUM_THREADS=1 taskset -c "$CORE" python3 - "$MODEL" "$prec" "$REPS" <<'PY'
import statistics, sys, time
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
model, prec, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
dt = torch.bfloat16 if prec == "bf16" else torch.float32
g = torch.Generator().manual_seed(0)
def timed(fn):
    fn()  # warm-up
    v = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); v.append(time.perf_counter() - t0)
    return statistics.median(v)
with torch.inference_mode():
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=dt).eval()
    x = torch.randn(3, 4, 64, 64, generator=g).to(dt)
    ctx = torch.randn(3, 77, 768, generator=g).to(dt)
    t = torch.tensor(500)
    print("unet_sd15_64x64_b3", timed(lambda: unet(x, t, encoder_hidden_states=ctx)))
    del unet
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=dt).eval()
    z = torch.randn(1, 4, 64, 64, generator=g).to(dt)
    print("vae_decode_512", timed(lambda: vae.decode(z)))
PY
)
    for c in unet_sd15_64x64_b3 vae_decode_512; do
        s=$(sld_secs "$prec" "$c")
        p=$(printf '%s\n' "$torch_out" | awk -v c="$c" '$1 == c { print $2 }')
        if [ -n "$s" ] && [ -n "$p" ]; then
            printf '%-6s %-22s %10.2f %10.2f %7.2fx\n' "$prec" "$c" "$s" "$p" \
                "$(echo "$p $s" | awk '{ print $1 / $2 }')"
        else
            printf '%-6s %-22s %10s %10s %8s\n' "$prec" "$c" "${s:-?}" "${p:-?}" "n/a"
        fi
    done
done
