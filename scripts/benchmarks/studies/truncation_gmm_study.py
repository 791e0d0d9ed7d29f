"""What a truncated singular basis costs on the Gaussian-mixture exactness check.

A basis truncated to rank k (``forward_models.singular_basis.randomized_basis``, taken by
``samplers.smc.LinearGaussian`` beyond its memory budget) makes every basis sampler target the exact posterior of
the truncated likelihood, ``A_k = U_k diag(s_k) V_k^T`` in place of ``A``. This study measures that shift of the
target itself, with no sampler in between: on the Gaussian-mixture problem (``inverse.problems.gmm_case``, d = 80,
dy = 16), exact draws of the posterior under ``A_k`` against exact draws under ``A``, by sliced Wasserstein
distance in units of the floor (the distance between two independent exact sets of the same size, averaged over
``--pairs`` pairs). Beside each cell: ``s_{k+1} / sigma_y``, the signal-to-noise ratio of the first dropped direction,
which :class:`samplers.smc.linear_gaussian.BasisTruncationWarning` tests (it fires above 1).

    python scripts/benchmarks/studies/truncation_gmm_study.py --seeds 10 --ranks 16 12 8 4 \
        --out data/benchmarks/truncation_gmm_study.json

Run from the repository root by path; it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from inverse.metrics import sliced_wasserstein
from inverse.problems import gmm_case

__all__ = ["cell", "main"]


def cell(seed: int, rank: int, d: int, dy: int, n: int, pairs: int) -> dict:
    """SW distance (in floors) between the exact posteriors under ``A`` and under its rank-``rank`` truncation."""
    case = gmm_case(d, dy, seed)
    A = case.problem.forward_model.A.to(torch.float64)
    y, sy = case.problem.y.to(torch.float64), float(case.problem.noise.sigma)
    U, s, Vh = torch.linalg.svd(A, full_matrices=False)
    Ak = U[:, :rank] @ torch.diag(s[:rank]) @ Vh[:rank]
    truncated = case.prior.posterior(Ak, y, sy)
    g = torch.Generator().manual_seed(1000 + seed)
    dist, floor = [], []
    for p in range(pairs):
        ref, ref2 = case.posterior.sample(n, g), case.posterior.sample(n, g)
        dist.append(sliced_wasserstein(truncated.sample(n, g), ref, seed=p))
        floor.append(sliced_wasserstein(ref2, ref, seed=p))
    s_next = float(s[rank]) if rank < len(s) else 0.0
    return {"seed": seed, "rank": rank, "snr_first_dropped": s_next / sy, "ratio": statistics.mean(dist)
            / statistics.mean(floor)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, default=80)
    p.add_argument("--dy", type=int, default=16)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--ranks", type=int, nargs="+", default=[16, 12, 8, 4])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--out", default="data/benchmarks/truncation_gmm_study.json")
    a = p.parse_args(argv)
    rows = []
    for seed in range(a.seeds):
        for rank in a.ranks:
            rows.append(cell(seed, rank, a.d, a.dy, a.n, a.pairs))
            print(json.dumps(rows[-1]), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"d": a.d, "dy": a.dy, "n": a.n, "pairs": a.pairs, "rows": rows}, indent=1))
    print(f"\n| rank kept (of {a.dy}) | median SW / floor | max | median SNR of the first dropped direction | "
          "cells with SNR <= 1: median SW / floor |")
    print("|---|---|---|---|---|")
    for rank in a.ranks:
        rs = [r for r in rows if r["rank"] == rank]
        quiet = [r["ratio"] for r in rs if r["snr_first_dropped"] <= 1.0]
        print(f"| {rank} | {statistics.median(r['ratio'] for r in rs):.2f} | {max(r['ratio'] for r in rs):.2f} | "
              f"{statistics.median(r['snr_first_dropped'] for r in rs):.2f} | "
              f"{(f'{statistics.median(quiet):.2f} ({len(quiet)} cells)') if quiet else '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
