#!/usr/bin/env bash
# The commands that produce the shipped priors in data/priors/ (each card, data/priors/NAME/prior.json, records the
# steps reached, the batch size and the accelerator). Every prior: UNet widths 32 64 64 (the 128 x 128 ones: 32 64 64 128), 8,192 training examples,
# seed 0 (`inverse train-prior`). Two recipes, run from anywhere in the checkout:
#
#   bash scripts/train_prior.sh [NAME...]
#     On this CPU (phantoms-64, darcy-perm-32), one prior after another (default: all of them), batch 16, one
#     thread, in chunks up to the final step count: each chunk resumes from the Lightning checkpoint in
#     data/priors/NAME-work and re-exports data/priors/NAME, so an interrupted run loses at most one chunk.
#     On a 2-core machine run one or two at a time.
#
#   bash scripts/train_prior.sh --gpu MINUTES ROOT OUTDIR NAME...
#     On a leased GPU (ns-vorticity-64, seismic-velocity-70, phantoms-64-flow), time-boxed: the named priors train
#     side by side on one GPU (each a process: one 1.1 M-parameter UNet leaves it mostly idle), batch 64, for
#     MINUTES of fitting each, resuming from ROOT/NAME-work when present. ROOT/NAME is the export; OUTDIR receives
#     exports.tar (exports, CSV logs, ROOT/NAME.log) and each last.ckpt in 15 MB parts, for the next lease. The
#     diffusers wheel travels in .whl/ where the machine lacks it; ACCEL=cpu DATADEV=cpu run it without a GPU.
#       bash scripts/train_prior.sh --gpu 7 .gpu "$OUT" ns-vorticity-64 seismic-velocity-70 phantoms-64-flow  # lease 1
#       bash scripts/train_prior.sh --gpu 7 .gpu "$OUT" seismic-velocity-70 phantoms-64-flow                  # lease 2
#
#     The 128 x 128 priors (phantoms-128, ns-vorticity-128: InverseBench's NS resolution; a fourth UNet level, widths
#     32 64 64 128, so the receptive field grows with the image) are GPU-only (see BENCHMARKS.md, "Training cost"):
#       bash scripts/train_prior.sh --gpu 7 .gpu "$OUT" phantoms-128 ns-vorticity-128                        # lease 1
#     then, on the CPU machine, `python scripts/prior_quality.py` on the export before it is shipped.
#
#   bash scripts/train_prior.sh --user real-patches-64 [STEPS] [MINUTES]
#     The prior trained on user data (`inverse train-prior --data`): 500 64 x 64 greyscale PNGs cut from the real
#     images scikit-image and pydicom ship (scripts/make_user_images.py; the standard test images camera, moon,
#     coins, ... are held out), 10% of them held out for the card's quality report, UNet widths 16 32 32, batch 16,
#     one thread, up to STEPS (default 3000) or MINUTES of fitting (default 55), whichever comes first.
set -euo pipefail
cd "$(dirname "$0")/.."

# NAME -> data set, image size, kind, final steps and chunk of the CPU recipe, and UNet widths when not 32,64,64
# (70 x 70 is not divisible by 4: the three-level UNet runs padded at 72 x 72, priors.network.network_call)
declare -A SPEC=(
  [phantoms-128]="phantoms 128 edm 40000 1000 32,64,64,128"
  [ns-vorticity-128]="ns-vorticity 128 edm 40000 1000 32,64,64,128"
  [phantoms-64]="phantoms 64 edm 20000 1000"
  [darcy-perm-32]="darcy-perm 32 edm 20000 1000"
  [ns-vorticity-64]="ns-vorticity 64 edm 20000 1000"
  [seismic-velocity-70]="seismic-velocity 70 edm 20000 500"
  [phantoms-64-flow]="phantoms 64 flow 20000 1000"
)
ORDER=(phantoms-64 darcy-perm-32 ns-vorticity-64 seismic-velocity-70 phantoms-64-flow)
COMMON=(--num-examples 8192 --seed 0 --quiet)

widths() {  # widths NAME: the --widths arguments of its SPEC entry
  local w
  read -r _ _ _ _ _ w <<< "$(spec "$1")"
  echo "${w:-32,64,64}" | tr ',' ' '
}

spec() {  # spec NAME: print its SPEC entry, or stop with the known names
  if [ -z "${SPEC[$1]+x}" ]; then
    echo "train_prior.sh: unknown prior '$1' (known: ${ORDER[*]})" >&2
    exit 2
  fi
  echo "${SPEC[$1]}"
}

train_cpu() {  # train_cpu NAME: chunk by chunk up to the final step count, resuming
  local name=$1 dataset size kind final chunk
  read -r dataset size kind final chunk <<< "$(spec "$name")"
  local out=data/priors/$name done_steps=0
  local args=(--dataset "$dataset" --size "$size" --kind "$kind" "${COMMON[@]}" --widths $(widths "$name") --batch-size 16
              --checkpoint-every 250 --threads 1 --out "$out" --name "$name")
  if [ -f "$out/prior.json" ]; then
    done_steps=$(python -c "import json; print(json.load(open('$out/prior.json'))['training']['steps'])")
  fi
  local step=$(( (done_steps / chunk + 1) * chunk ))
  while [ "$step" -le "$final" ]; do
    if [ -f "$out-work/checkpoints/last.ckpt" ]; then
      python -m inverse.cli train-prior "${args[@]}" --steps "$step" --resume
    else
      python -m inverse.cli train-prior "${args[@]}" --steps "$step" --overwrite
    fi
    echo "$(date -u +%FT%TZ) exported $out at $step steps"
    step=$((step + chunk))
  done
}

train_gpu() {  # train_gpu MINUTES ROOT OUTDIR NAME...: side by side, time-boxed, then pack for the next lease
  set +e  # a failed training must not stop the packing of the others
  local minutes=$1 root=$2 outdir=$3 name dataset size kind
  shift 3
  if [ -d .whl ] && [ ! -d /tmp/site/diffusers ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || exit 1
  fi
  [ -d /tmp/site/diffusers ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  mkdir -p "$root" "$outdir"
  for name in "$@"; do
    read -r dataset size kind _ <<< "$(spec "$name")"
    local resume=()
    [ -f "$root/$name-work/checkpoints/last.ckpt" ] && resume=(--resume)
    python3 -m inverse.cli train-prior --dataset "$dataset" --size "$size" --kind "$kind" "${COMMON[@]}" \
      --widths $(widths "$name") --batch-size 64 --checkpoint-every 500 --steps 1000000 --max-minutes "$minutes" \
      --accelerator "${ACCEL:-gpu}" --data-device "${DATADEV:-cuda}" --out "$root/$name" --name "$name" \
      --overwrite "${resume[@]}" > "$root/$name.log" 2>&1 &
  done
  wait
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
  tar -cf "$outdir/exports.tar" --exclude='*.ckpt' --exclude='dataset.safetensors' -C "$root" .
  for name in "$@"; do
    local c="$root/$name-work/checkpoints/last.ckpt"
    [ -f "$c" ] && split -b 15000000 "$c" "$outdir/$name.ckpt.part-"
    echo "== $name"; grep -v -i "warn\|tip" "$root/$name.log" | tail -4
  done
  ls -la "$outdir"
}

train_user() {  # train_user NAME [STEPS] [MINUTES]: the user-data recipe (header)
  local name=$1 steps=${2:-3000} minutes=${3:-55}
  if [ "$name" != real-patches-64 ]; then
    echo "train_prior.sh: --user knows real-patches-64, not '$name'" >&2
    exit 2
  fi
  local images=data/priors/$name-work/images
  [ -d "$images" ] || python scripts/make_user_images.py --out "$images" --num 500 --size 64 --seed 0
  python -m inverse.cli train-prior --data "$images" --size 64 --widths 16 32 32 --steps "$steps" --batch-size 16 \
    --lr 2e-4 --seed 0 --checkpoint-every 250 --threads 1 --max-minutes "$minutes" --quality-samples 32 \
    --units "grey level (0-255)" --name "$name" --out "data/priors/$name" --overwrite --quiet
}

if [ "${1:-}" = "--user" ]; then
  shift
  train_user "$@"
elif [ "${1:-}" = "--gpu" ]; then
  shift
  if [ $# -lt 4 ]; then
    echo "usage: bash scripts/train_prior.sh --gpu MINUTES ROOT OUTDIR NAME..." >&2
    exit 2
  fi
  for name in "${@:4}"; do spec "$name" > /dev/null; done
  train_gpu "$@"
else
  names=("$@")
  [ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")
  for name in "${names[@]}"; do spec "$name" > /dev/null; done
  for name in "${names[@]}"; do train_cpu "$name"; done
fi
