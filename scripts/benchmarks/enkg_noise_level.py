"""Does EnKG respect the noise level? Its step variants on a linear-Gaussian problem with an exact posterior, and on
three Gaussian-mixture instances.

Problem: ``y = A x + sigma e`` with ``A`` a 8 x 16 Gaussian matrix, prior ``N(0, I)``, sigma 0.05 and 0.5, 128 members,
80 steps. Per variant: relative error of the ensemble mean against the exact posterior mean, the ratio of the
ensemble's total variance to the exact one, and the mean squared whitened misfit per measurement (1 = the noise
level). Then SW / floor on the Gaussian mixture (d = 8, dy = 2, seeds 0-2, 500 samples).

    python scripts/benchmarks/enkg_noise_level.py > data/benchmarks/enkg_noise_level.txt
"""

import warnings

import torch

from forward_models import Gaussian, InverseProblem, MatrixOperator
from inverse.problems import evaluate_sampler, gmm_case
from priors import GaussianPrior
from samplers import get_sampler

VARIANTS = [{"gain": "normalised", "discrepancy": 0.0}, {"gain": "normalised"},
            {"gain": "kalman", "guidance_scale": 1.0}, {"gain": "kalman", "guidance_scale": 2.0}]


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    for sig in (0.05, 0.5):
        g = torch.Generator().manual_seed(0)
        A = torch.randn(8, 16, dtype=torch.float64, generator=g)
        prior = GaussianPrior(torch.zeros(16))
        truth = torch.randn(16, dtype=torch.float64, generator=g)
        problem = InverseProblem.simulate(MatrixOperator(A), Gaussian(sig), truth, seed=0)
        cov = torch.linalg.inv(torch.eye(16, dtype=torch.float64) + A.T @ A / sig**2)
        mean = cov @ (A.T @ problem.y / sig**2)
        for cfg in VARIANTS:
            x = get_sampler("enkg", **cfg).sample(problem, prior, 128, seed=0).samples
            misfit = ((x @ A.T - problem.y) / sig).pow(2).sum(1).mean() / 8
            print(f"sigma {sig} {cfg}: mean error {float((x.mean(0) - mean).norm() / mean.norm()):.3f}, variance ratio "
                  f"{float(x.var(0).sum() / cov.diagonal().sum()):.2f}, misfit per measurement {float(misfit):.2f}")
    for cfg in (VARIANTS[0], VARIANTS[1], VARIANTS[2]):
        rs = [evaluate_sampler(gmm_case(8, 2, s), get_sampler("enkg", **cfg), 500, seed=s, num_slices=500)
              for s in range(3)]
        print(f"gmm d=8 dy=2 {cfg}: SW / floor per seed", [round(r["sw"] / r["sw_floor"], 2) for r in rs])


if __name__ == "__main__":
    main()
