"""MCG's soft projection with the state noise in physical units (|scale| sigma, the fix) vs in model units (before).

Held-out phantoms (seeds 10000-10001), the default prior and settings of each problem, 4 samples, seed 0.
Run: ``python scripts/benchmarks/mcg_projection_units.py`` (results in data/benchmarks/mcg_projection_units.txt).
"""

import torch

import samplers.mcg as mcg
from inverse.measurements import simulate
from inverse.reconstruction import reconstruct

__all__ = ["CASES", "main"]

CASES = [("mri", {"acceleration": 4.0}), ("mri", {"acceleration": 8.0}), ("ct", {"angles": 30})]


def main() -> None:
    """Print one line per instance: PSNR, relative L2, misfit and coverage, before and after."""
    torch.set_num_threads(1)
    fixed = mcg.physical_noise_level
    for prob, opts in CASES:
        for seed in (10000, 10001):
            m = simulate(prob, options=opts, seed=seed)
            row = []
            for label, fn in (("old", lambda p, s: float(s)), ("new", fixed)):
                mcg.physical_noise_level = fn
                d = reconstruct(m, None, "mcg", num_samples=4, seed=0).diagnostics
                row.append(f"{label} psnr {d['psnr']:.2f} rl2 {d['relative_l2']:.4f} misfit {d['misfit']:.2f} "
                           f"cov {d.get('coverage_90', float('nan')):.2f}")
            mcg.physical_noise_level = fixed
            print(prob, opts, seed, " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
