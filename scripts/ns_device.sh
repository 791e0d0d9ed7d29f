#!/usr/bin/env bash
# Navier-Stokes 64^2 near InverseBench's setting on a leased GPU: x2 subsampling, sigma = 0.01 (our noise model needs
# sigma > 0), PnP-DM (the best of the leading samplers on NS here) and EnKG at InverseBench's budget (2,048 members,
# 80 steps, 2 updates), relative L2 per instance. Resumable per instance: the committed store is copied in, finished
# instances are skipped, and OUTDIR/ns_device.jsonl comes back to be committed as data/benchmarks/ns_device.jsonl.
# The 128^2 setting itself waits for ns-vorticity-128 (scripts/train_prior.sh --gpu ... ns-vorticity-128).
# Usage (device tool): bash scripts/ns_device.sh "$OUT" [INSTANCES] [MINUTES]
set -uo pipefail
cd "$(dirname "$0")/.."
outdir=${1:-${OUT:-.ns-device}}
instances=${2:-4}
minutes=${3:-8}
mkdir -p "$outdir"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
[ -f data/benchmarks/ns_device.jsonl ] && cp data/benchmarks/ns_device.jsonl "$outdir/ns_device.jsonl"
timeout $((minutes * 60)) python scripts/benchmarks/ns_basin.py --device cuda --factor 2 --sigma 0.01 \
  --instances "$instances" --methods pnp-dm enkg --enkg-particles 2048 --num-samples 4 --threads 4 \
  --out "$outdir/ns_device.jsonl"
echo "ns_basin.py: exit $?"
python scripts/benchmarks/ns_basin.py --table "$outdir/ns_device.jsonl"
