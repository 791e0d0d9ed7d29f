#!/usr/bin/env bash
# The exact commands that produce the shipped priors (see each data/priors/NAME/prior.json for the
# steps actually reached, the batch size and the accelerator it trained on).
# On a 2-core CPU (phantoms-64, darcy-perm-32): run them one or two at a time; each resumes.
# On a leased GPU (ns-vorticity-64, seismic-velocity-70, phantoms-64-flow, card "accelerator": "cuda: ..."):
# scripts/train_priors_gpu.sh, time-boxed lease by lease, resuming from the checkpoints it packs:
#   bash scripts/train_priors_gpu.sh 7 .gpu "$OUT" ns-vorticity-64 seismic-velocity-70 phantoms-64-flow   # lease 1
#   bash scripts/train_priors_gpu.sh 7 .gpu "$OUT" seismic-velocity-70 phantoms-64-flow                   # lease 2
# (batch 64, same network, data and seed as below; the CPU commands reach the same priors, slower.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/train_shipped_prior.sh phantoms-64 phantoms 64 edm 20000 1000 32 64 64
bash scripts/train_shipped_prior.sh darcy-perm-32 darcy-perm 32 edm 20000 1000 32 64 64
bash scripts/train_shipped_prior.sh ns-vorticity-64 ns-vorticity 64 edm 20000 1000 32 64 64
# 70 x 70 is not divisible by 4: the three-level UNet runs padded at 72 x 72 (priors.network.network_call)
bash scripts/train_shipped_prior.sh seismic-velocity-70 seismic-velocity 70 edm 20000 500 32 64 64
bash scripts/train_shipped_prior.sh phantoms-64-flow phantoms 64 flow 20000 1000 32 64 64
