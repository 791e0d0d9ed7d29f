#!/usr/bin/env bash
# Train one shipped prior on this CPU in chunks: each chunk resumes from the Lightning checkpoint in
# data/priors/NAME-work and re-exports data/priors/NAME (diffusers layout + prior.json), so a session
# that ends mid-way loses at most one chunk.
# Usage: bash scripts/train_shipped_prior.sh NAME DATASET SIZE KIND FINAL_STEPS CHUNK WIDTH...
#   e.g. bash scripts/train_shipped_prior.sh darcy-perm-32 darcy-perm 32 edm 20000 1000 32 64 64
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=$1; DATASET=$2; SIZE=$3; KIND=$4; FINAL=$5; CHUNK=$6; shift 6
WIDTHS=("$@")
OUT=data/priors/$NAME
COMMON=(--dataset "$DATASET" --size "$SIZE" --kind "$KIND" --num-examples 8192 --widths "${WIDTHS[@]}"
        --batch-size 16 --seed 0 --checkpoint-every 250 --threads 1 --quiet --out "$OUT" --name "$NAME")
done_steps=0
if [ -f "$OUT/prior.json" ]; then
  done_steps=$(python -c "import json; print(json.load(open('$OUT/prior.json'))['training']['steps'])")
fi
step=$(( (done_steps / CHUNK + 1) * CHUNK ))
while [ "$step" -le "$FINAL" ]; do
  if [ -f "$OUT-work/checkpoints/last.ckpt" ]; then
    inverse train-prior "${COMMON[@]}" --steps "$step" --resume
  else
    inverse train-prior "${COMMON[@]}" --steps "$step" --overwrite
  fi
  echo "$(date -u +%FT%TZ) exported $OUT at $step steps"
  step=$((step + CHUNK))
done
