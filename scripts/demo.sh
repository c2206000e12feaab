#!/bin/sh
# The main job in one command: install what is missing, build, and generate
# an image with Safe Latent Diffusion (medium). MODEL defaults to the tiny
# random-weight model shipped with the tests (its pictures are noise; point
# MODEL at a real SD 1.x/2.x diffusers folder or .safetensors file for real
# images). Extra arguments go to `sld generate`.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -j"$(nproc)" >/dev/null
EXTRA=""
if [ -z "$MODEL" ]; then
  MODEL=tests/fixtures/models/tiny-sd1
  # the tiny model's random safety checker flags everything: keep the image
  EXTRA="--keep-flagged"
fi
OUT=${OUT:-out/knight.png}
mkdir -p "$(dirname "$OUT")"
exec ./build/sld generate --model "$MODEL" \
  --prompt "a photograph of a knight fighting a dragon, blood on the sword" \
  --safety medium --seed 42 $EXTRA -o "$OUT" "$@"
