#!/usr/bin/env bash
# Navier-Stokes 64^2 near InverseBench's setting on a leased GPU: x2 subsampling, sigma = 0.01 (our noise model needs
# sigma > 0), relative L2 per instance:
#   - EnKG's error against its ensemble size J (64, 256, 512: does it fall with J?) and at InverseBench's budget
#     (J = 2,048, 80 steps, 2 updates), and PnP-DM (the best of the leading samplers on NS here);
# Resumable at two levels: finished instances are skipped (the committed stores data/benchmarks/ns_device*.jsonl
# are copied in), and a sampler run cut by the time limit resumes from its checkpoint in OUTDIR/ckpt (bring OUTDIR/ckpt
# back and pass it as CKPT=... to the next lease; EnKG with 2,048 members keeps ~35 MB). Commit OUTDIR/*.jsonl as
# data/benchmarks/. The 128^2 setting itself waits for ns-vorticity-128 (scripts/train_prior.sh --gpu).
# Usage (device tool): bash scripts/ns_device.sh "$OUT" [INSTANCES] [MINUTES]
set -uo pipefail
cd "$(dirname "$0")/.."
outdir=${1:-${OUT:-.ns-device}}
instances=${2:-2}
minutes=${3:-8}
mkdir -p "$outdir/ckpt"
[ -n "${CKPT:-}" ] && [ -d "$CKPT" ] && cp -n "$CKPT"/* "$outdir/ckpt/" 2>/dev/null
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
deadline=$(( $(date +%s) + minutes * 60 ))
run() {  # run STORE ARGS...: ns_basin.py until the deadline, resumable
  local store=$1 left
  shift
  left=$(( deadline - $(date +%s) ))
  [ "$left" -le 10 ] && return
  [ -f "data/benchmarks/$store" ] && [ ! -f "$outdir/$store" ] && cp "data/benchmarks/$store" "$outdir/$store"
  timeout "$left" python scripts/benchmarks/ns_basin.py --device cuda --factor 2 --sigma 0.01 --instances "$instances" \
    --threads 4 --checkpoint-dir "$outdir/ckpt" --out "$outdir/$store" "$@"
  echo "ns_basin.py $store: exit $?"
}
for J in 64 256 512; do run "ns_device_enkg_J$J.jsonl" --methods enkg --enkg-particles "$J"; done
run ns_device.jsonl --methods pnp-dm enkg --enkg-particles 2048 --num-samples 4
for f in "$outdir"/ns_device*.jsonl; do echo "== $f"; python scripts/benchmarks/ns_basin.py --table "$f"; done
