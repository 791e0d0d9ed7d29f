#!/usr/bin/env bash
# Train shipped priors on a leased GPU, time-boxed, several at once on one GPU (each a separate
# process: the 1.1 M-parameter UNets leave the GPU mostly idle alone). Run on the GPU machine from the
# repository root; the diffusers wheel travels in .whl/ where the machine lacks it.
# Usage: bash scripts/train_priors_gpu.sh MINUTES ROOT OUTDIR NAME...
#   ROOT/NAME is the exported prior, ROOT/NAME-work its Lightning checkpoints (resumed when present);
#   OUTDIR receives exports.tar (exports, CSV logs, ROOT/NAME.log) and each last.ckpt split in 15 MB parts.
#   ACCEL=cpu DATADEV=cpu run the same thing without a GPU (a smoke test).
#   e.g. bash scripts/train_priors_gpu.sh 7.5 .gpu "$OUT" ns-vorticity-64 seismic-velocity-70 phantoms-64-flow
# Settings per prior: those of scripts/train_all_priors.sh, but batch 64 and a time limit, not a step count.
set -uo pipefail
MIN=$1; ROOT=$2; OUTDIR=$3; shift 3
if [ -d .whl ] && [ ! -d /tmp/site/diffusers ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
fi
[ -d /tmp/site/diffusers ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
declare -A SPEC=([ns-vorticity-64]="ns-vorticity 64 edm" [seismic-velocity-70]="seismic-velocity 70 edm"
                 [phantoms-64-flow]="phantoms 64 flow" [phantoms-64]="phantoms 64 edm" [darcy-perm-32]="darcy-perm 32 edm")
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
mkdir -p "$ROOT" "$OUTDIR"
for NAME in "$@"; do
  read -r DATASET SIZE KIND <<< "${SPEC[$NAME]}"
  RESUME=(); [ -f "$ROOT/$NAME-work/checkpoints/last.ckpt" ] && RESUME=(--resume)
  python3 -m inverse.cli train-prior --dataset "$DATASET" --size "$SIZE" --kind "$KIND" --num-examples 8192 \
    --widths 32 64 64 --batch-size 64 --seed 0 --checkpoint-every 500 --steps 1000000 --max-minutes "$MIN" \
    --accelerator "${ACCEL:-gpu}" --data-device "${DATADEV:-cuda}" --quiet --out "$ROOT/$NAME" --name "$NAME" --overwrite "${RESUME[@]}" \
    > "$ROOT/$NAME.log" 2>&1 &
done
wait
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
tar -cf "$OUTDIR/exports.tar" --exclude='*.ckpt' --exclude='dataset.safetensors' -C "$ROOT" .
for NAME in "$@"; do
  c="$ROOT/$NAME-work/checkpoints/last.ckpt"
  [ -f "$c" ] && split -b 15000000 "$c" "$OUTDIR/$NAME.ckpt.part-"
  echo "== $NAME"; grep -v -i "warn\|tip" "$ROOT/$NAME.log" | tail -4
done
ls -la "$OUTDIR"
