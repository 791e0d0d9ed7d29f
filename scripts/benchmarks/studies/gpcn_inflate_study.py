"""Study (issue 6): how wide the generalised-pCN reference must be.

On the 4-d linear-Gaussian problem of ``tests/samplers/test_mcmc.py`` (non-zero prior mean), a pilot pCN
run on the deliberately biased model fits the reference; the accurate chain then runs 2000 steps with
``inflate`` 1.2, 2 and 3 and prints the relative covariance error, ESS and R-hat. The figures quoted in
``samplers.pcn.gaussian_reference`` and docs/mcmc.md (46% at 1.2, 5% at 2) come from this script.

    python scripts/gpcn_inflate_study.py
"""
import sys

import torch

sys.path.insert(0, "tests/samplers")
sys.path.insert(0, ".")
from test_mcmc import PCN, Potential, _linear_gaussian, run_chains  # noqa: E402

from samplers.pcn import gaussian_reference  # noqa: E402

__all__ = []

torch.set_num_threads(1)
problem, biased, mu, m, P = _linear_gaussian(True)
pilot = run_chains(PCN(Potential(biased), mu, 0.5), mu.sample(4, torch.Generator().manual_seed(3)), 500, seed=3,
                   warmup=100, target_acceptance=0.3)
for inflate in (1.2, 2.0, 3.0):
    ref = gaussian_reference(pilot.draws, inflate=inflate)
    r = run_chains(PCN(Potential(problem), mu, 0.9, reference=ref), mu.sample(4, torch.Generator().manual_seed(0)),
                   2000, seed=0, warmup=200, target_acceptance=0.4)
    x = r.draws.reshape(-1, 4)
    err = float(torch.linalg.matrix_norm(torch.cov(x.T) - P) / torch.linalg.matrix_norm(P))
    print(f"inflate {inflate}: covariance error {err:.3f}, ESS {r.ess().min():.0f}, R-hat {r.rhat().max():.3f}")
