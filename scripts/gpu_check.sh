#!/usr/bin/env bash
# The one GPU check, ready for a leased device (about 7-8 minutes on an H100 with 16 CPU cores):
#   1. the CUDA-marked tests (every sampler on the GPU against its CPU run; DPS/MCG on CUDA; NS data on the GPU);
#   2. scripts/benchmarks/gpu_check.py: DPS at 64^2 with 1,000 steps, every sampler for 100 steps on CT 64^2 (time,
#      peak device memory), the UNet at 64^2/128^2/256^2, reconstruct-batch with 1/2/4/8 CPU processes.
# Everything lands in OUTDIR (default $OUT, else .gpu-check): cuda_tests.log and gpu_check.json; turn the JSON into
# the GPU table of BENCHMARKS.md back on the CPU machine with
#   python scripts/benchmarks/gpu_table.py OUTDIR/gpu_check.json --markdown BENCHMARKS.md
# Usage (device tool): bash scripts/gpu_check.sh "$OUT"
set -uo pipefail
cd "$(dirname "$0")/.."
outdir=${1:-${OUT:-.gpu-check}}
mkdir -p "$outdir"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 120 python -m pytest -q -p no:cacheprovider -m "slow or not slow" tests/samplers/test_cuda.py \
  "tests/samplers/test_dps_mcg.py::test_runs_on_cuda_unchanged" \
  "tests/priors/test_training.py::test_navier_stokes_data_on_the_gpu_match_the_cpu" > "$outdir/cuda_tests.log" 2>&1
echo "cuda tests: exit $? ($(tail -1 "$outdir/cuda_tests.log"))"
timeout 330 python scripts/benchmarks/gpu_check.py --device cuda --out "$outdir/gpu_check.json" \
  --tests-log "$outdir/cuda_tests.log"
echo "gpu_check.py: exit $?"
ls -la "$outdir"
