"""Study: how wide the generalised-pCN reference must be.

Problem: a 4-d linear-Gaussian posterior (prior ``N(m_0, C_0)`` with a non-zero mean, 3 measurements,
noise 0.5), known in closed form, ``C_post = (C_0^{-1} + A^T A / s^2)^{-1}``:
:func:`inverse.problems.linear_gaussian_problem` with seed 1, the problem of the pCN exactness tests. A pilot
pCN run on its deliberately biased model (``1.2 A + 0.15``) fits the reference Gaussian
(:func:`samplers.mcmc.gaussian_reference`); the accurate chain then runs 2000 steps with ``inflate`` 1.2, 2
and 3 and prints the relative Frobenius error of the posterior covariance, ESS and R-hat. The figures quoted
in docs/mcmc.md come from this script.

    python scripts/benchmarks/studies/gpcn_inflate_study.py

Run from the repository root by path; like every study it imports only the installed packages.
"""

from __future__ import annotations

import argparse

import torch

from inverse.problems import linear_gaussian_problem
from samplers.mcmc import PCN, Potential, gaussian_reference, sample_chains

__all__ = ["main"]


def main(argv=None) -> int:
    """Print one line per inflation factor."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inflate", type=float, nargs="+", default=[1.2, 2.0, 3.0])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    problem, biased, mu, _, P = linear_gaussian_problem(1)
    pilot = sample_chains(PCN(Potential(biased), mu, 0.5), mu.sample(4, torch.Generator().manual_seed(3)), 500,
                          seed=3, warmup=100, target_acceptance=0.3)
    for inflate in args.inflate:
        ref = gaussian_reference(pilot.draws, inflate=inflate)
        r = sample_chains(PCN(Potential(problem), mu, 0.9, reference=ref),
                          mu.sample(4, torch.Generator().manual_seed(0)), 2000, seed=0, warmup=200,
                          target_acceptance=0.4)
        x = r.draws.reshape(-1, mu.dim)
        err = float(torch.linalg.matrix_norm(torch.cov(x.T) - P) / torch.linalg.matrix_norm(P))
        print(f"inflate {inflate}: covariance error {err:.3f}, ESS {r.ess().min():.0f}, R-hat {r.rhat().max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
