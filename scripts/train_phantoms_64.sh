#!/usr/bin/env bash
# Shipped prior phantoms-64: EDM denoiser on random ellipse phantoms, trained on this 2-core CPU in
# chunks (each chunk resumes from the Lightning checkpoint and re-exports data/priors/phantoms-64).
# Usage: bash scripts/train_phantoms_64.sh [final_steps] [chunk]
set -euo pipefail
cd "$(dirname "$0")/.."
FINAL=${1:-20000}
CHUNK=${2:-1000}
OUT=data/priors/phantoms-64
step=$CHUNK
first=1
if [ -f "$OUT-work/checkpoints/last.ckpt" ]; then first=0; fi
while [ "$step" -le "$FINAL" ]; do
  if [ "$first" = 1 ]; then
    inverse train-prior --dataset phantoms --size 64 --num-examples 8192 --widths 32 64 64 --batch-size 16 \
      --steps "$step" --seed 0 --checkpoint-every 250 --threads 1 --quiet --out "$OUT" --name phantoms-64 --overwrite
    first=0
  else
    inverse train-prior --dataset phantoms --size 64 --num-examples 8192 --widths 32 64 64 --batch-size 16 \
      --steps "$step" --seed 0 --checkpoint-every 250 --threads 1 --quiet --out "$OUT" --name phantoms-64 --resume
  fi
  echo "$(date -u +%FT%TZ) exported $OUT at $step steps"
  step=$((step + CHUNK))
done
