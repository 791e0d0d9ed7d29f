"""Two-level MCMC on a small Darcy problem, end to end, in about a minute on one CPU thread.

Log-permeability (Matern Karhunen-Loeve prior, 16 modes, 32 x 32 grid) from 25 pressure sensors:

1. train a neural surrogate on 500 solver runs (pytorch-lightning), save and reload it (safetensors + card);
2. single-level pCN on the fine solver;
3. delayed acceptance (MLDA kernel) with the coarse grid (16 x 16) and with the surrogate, checkpointed;
   then generalised pCN: a reference Gaussian fitted on pilot chains of the coarse grid alone
   (``pilot_reference``), delayed acceptance started from the pilot's final states;
4. the hybrid two-level estimator of the posterior mean (long surrogate chain + short correction chain);
5. ArviZ diagnostics (bulk ESS, R-hat), acceptance and cost per level; the posterior as NetCDF.

    python scripts/example_two_level_mcmc.py [--out example-mcmc]

The problem is :func:`inverse.problems.darcy_two_level_problem` (noise 0.005, truth seed 1). Run from the
repository root by path; it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from forward_models import InverseProblem
from forward_models.surrogate import load_surrogate, save_surrogate, train_surrogate
from inverse.problems import darcy_two_level_problem
from priors.function_space import StandardGaussian
from samplers.mcmc import MLDA, PCN, Potential, hybrid_two_level, pilot_reference, sample_chains

__all__ = ["main"]


def _line(name, res) -> str:
    s = res.summary()
    acc = ", ".join(f"{k} {v:.2f}" for k, v in s["acceptance"].items())
    return (f"{name:18s} ESS {s['ess_min']:6.0f}  R-hat {s['rhat_max']:.3f}  fine solves {s['fine_solves']:6d}  "
            f"ESS/1000 fine {1000 * s['ess_per_fine_solve']:7.1f}  ESS/s {s['ess_per_second']:6.2f}  acceptance: {acc}")


def main(argv=None) -> int:
    """Run the example; writes OUT/surrogate/ and OUT/posterior.nc."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="example-mcmc")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    darcy = darcy_two_level_problem(32, 16, 0.005, truth_seed=1)
    prior, problem, coarse_problem, truth = darcy.prior, darcy.problem, darcy.coarse_problem, darcy.problem.truth
    fine_fm = problem.forward_model

    xi = torch.randn(500, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        x_train = prior.field(xi)
        y_train = fine_fm(x_train)
    sur, card = train_surrogate(x_train, y_train, projection=(prior.basis * prior.eigenvalues.sqrt()[:, None]).float(),
                                steps=1000, lr=3e-3, log_output=True)
    save_surrogate(sur, out / "surrogate", card, overwrite=True)
    sur = load_surrogate(out / "surrogate")
    print(f"surrogate: held-out relative error {card['val_relative_error_median']:.4f}, "
          f"trained in {card['train_time_s']:.1f} s")

    measure = StandardGaussian(16)
    fine = Potential(problem, prior.field, name="fine")
    coarse = Potential(coarse_problem, prior.field, name="coarse-grid")
    surrogate = Potential(InverseProblem(sur, problem.y, problem.noise), prior.field, name="surrogate")
    u0 = measure.sample(4, torch.Generator().manual_seed(3))

    pcn = sample_chains(PCN(fine, measure, 0.2), u0, 1500, warmup=500, target_acceptance=0.25, seed=0)
    print(_line("pCN", pcn))
    ckpt = out / "da-coarse.npz"
    ckpt.unlink(missing_ok=True)
    da = sample_chains(MLDA([coarse, fine], measure, 10, 0.2, randomize=True), u0, 200, warmup=30,
                       target_acceptance=0.25, adapt_every=2, seed=0, checkpoint=ckpt, checkpoint_every=50)
    print(_line("DA coarse grid", da) + f"   (checkpoint {ckpt})")
    das = sample_chains(MLDA([surrogate, fine], measure, 10, 0.2, randomize=True), u0, 200, warmup=30,
                        target_acceptance=0.25, adapt_every=2, seed=0)
    print(_line("DA surrogate", das))
    t0 = time.perf_counter()
    ref, u_pilot, pilot = pilot_reference(coarse, measure, u0, 800, warmup=200, seed=0)
    t_pilot = time.perf_counter() - t0
    dag = sample_chains(MLDA([coarse, fine], measure, 10, 0.5, randomize=True, reference=ref), u_pilot, 200, warmup=30,
                        target_acceptance=0.25, adapt_every=2, seed=0)
    print(_line("DA coarse + gpCN", dag) + f"   (pilot: 2 x 1000 coarse steps x 4 chains, {t_pilot:.1f} s)")

    est = hybrid_two_level(surrogate, fine, measure, u0, base_iterations=2000, correction_steps=50, thin=10,
                           warmup=300, seed=0)
    post_mean = dag.draws.reshape(-1, 16).mean(0)
    print(f"hybrid estimator:  max |mean - DA gpCN mean| {float((est.mean - post_mean).abs().max()):.3f}, "
          f"max std error {float(est.variance.sqrt().max()):.3f}, fine solves {est.fine_solves}, "
          f"correction acceptance {est.correction_acceptance:.2f}")
    posterior = dag.to_posterior(prior.field, truth=truth)
    posterior.to_netcdf(out / "posterior.nc", overwrite=True)
    err = float((posterior.mean() - truth).pow(2).mean().sqrt())
    print(f"posterior: {out / 'posterior.nc'} ({posterior.num_samples} draws); RMS error of the mean field {err:.3f} "
          f"(prior std {float(prior.pointwise_std().mean()):.3f}); total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
