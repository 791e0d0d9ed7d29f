"""Study: generalised-pCN delayed acceptance on the Darcy two-level problem, 32 x 32, with a coarse-grid pilot.

Problem: :func:`inverse.problems.darcy_two_level_problem` (16 KL modes, noise 0.02, seed 0, the coarse
level a 16 x 16 grid). A pilot on the coarse level (:func:`samplers.mcmc.pilot_reference`, pCN then
generalised pCN, two rounds) fits the reference Gaussian; MLDA chains (sub-chains of random length up to 20,
generalised pCN on the coarse level) then start at the pilot's final states. Prints the pilot's ESS and
R-hat, the chains' ESS / R-hat / fine solves / acceptance / step size / time, and per-chain means and
potentials: a chain started in a tail of the reference (e.g. at a prior draw) sticks there, the reason
``pilot_reference`` returns the pilot's final states.

    python scripts/benchmarks/studies/gpcn_pilot_study.py

Run from the repository root by path; like every study it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from inverse.problems import darcy_two_level_problem
from priors.function_space import StandardGaussian
from samplers.mcmc import MLDA, Potential, pilot_reference, sample_chains

__all__ = ["main"]


def main(argv=None) -> int:
    """Run the pilot and the chains; print their diagnostics."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--modes", type=int, default=16)
    p.add_argument("--iterations", type=int, default=300)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    darcy = darcy_two_level_problem(args.size, args.modes, 0.02, seed=0, check_finite=False)
    prior = darcy.prior
    measure = StandardGaussian(args.modes)
    coarse = Potential(darcy.coarse_problem, prior.field, name="coarse")
    fine = Potential(darcy.problem, prior.field, name="fine")
    u0 = measure.sample(4, torch.Generator().manual_seed(11))
    ref, u0, pilot = pilot_reference(coarse, measure, u0, 1500, warmup=300, rounds=2, seed=101)
    print(f"pilot: ESS {float(pilot.ess().min()):.0f}, R-hat {float(np.nanmax(pilot.rhat())):.3f}", flush=True)
    t = time.perf_counter()
    r = sample_chains(MLDA([coarse, fine], measure, 20, 0.5, randomize=True, reference=ref), u0, args.iterations,
                      seed=0, warmup=50, target_acceptance=0.25, adapt_every=2)
    s = r.summary()
    print(f"MLDA: ESS {s['ess_min']:.0f}, R-hat {s['rhat_max']:.3f}, fine solves {s['fine_solves']}, acceptance "
          f"{s['acceptance']}, step {r.beta:.3f}, {time.perf_counter() - t:.0f} s", flush=True)
    print("per-chain mean", r.draws.mean(1)[:, :6])
    print("per-chain potential mean", r.potentials.mean(1), "min", r.potentials.min(1).values)
    print("ess", r.ess())
    print("reference mean", ref.mean[:6], "truth", darcy.truth_coefficients[0, :6])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
