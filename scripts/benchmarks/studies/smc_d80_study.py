"""Why SMC misses 1.5x of the floor at d = 80 on the Gaussian-mixture benchmark: three measurements.

1. ``spread``: the variance of the top posterior mode in the 79 directions the measurement does not see
   (exact value 1: unit-variance components), per SMC sampler, with the ancestral reverse kernel and
   with the analytic one (:func:`samplers.steps.analytic_variance`); d = 80, dy = 1, seed 0.
2. ``share``: the weight an SMC run gives the top posterior mode, over repeated runs (sampler seeds)
   on one instance (d = 80, dy = 2, seed 1), at several particle counts: the mean shows the bias,
   the spread the Monte Carlo error, beside the binomial spread of as many exact draws.
3. ``large-n``: N particles resampled to n = 1000 draws, scored like the non-SMC samplers (SW against
   1000 exact draws, floor = two exact 1000-sets), seeds 0-4, dy = 1, 2, 4. ``--samplers exact`` puts
   exact posterior draws in the sampler's place: the spread of the ratio itself over the seeds.

    python scripts/benchmarks/studies/smc_d80_study.py --out data/benchmarks/smc_d80_study.json
    python scripts/benchmarks/studies/smc_d80_study.py --parts large-n --samplers tds --large-n 16384

Results go to ``--out`` (JSON, written atomically) and a Markdown summary to stdout.
Run from the repository root by path, as above; like every study it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from inverse.metrics import sliced_wasserstein
from inverse.problems import gmm_case
from samplers import get_sampler
from samplers.atomic import atomic_output

__all__ = ["large_n", "main", "mode_share", "unobserved_spread"]


def _top_mode(case, x):
    return torch.cdist(x, case.posterior.means).argmin(1) == int(case.posterior.weights.argmax())


def unobserved_spread(name: str, reverse_variance: str, n: int = 2048, steps: int = 100) -> float:
    """Weighted variance of the top mode in the unobserved directions (d = 80, dy = 1, seed 0)."""
    case = gmm_case(80, 1, 0)
    _, _, vh = torch.linalg.svd(case.problem.forward_model.A, full_matrices=False)
    sampler = get_sampler(name, num_steps=steps, reverse_variance=reverse_variance)
    post = sampler.sample(case.problem, case.prior, n, seed=3)
    x, w = post.samples, post.weights()
    top = _top_mode(case, x)
    wk = w[top] / w[top].sum()
    c = x[top] - (wk[:, None] * x[top]).sum(0)
    c = c - (c @ vh.T) @ vh
    return float((wk * (c**2).sum(1)).sum()) / (80 - 1)


def mode_share(name: str, n: int, runs: int = 8, steps: int = 100) -> dict:
    """Top-mode weight over ``runs`` sampler seeds (d = 80, dy = 2, instance seed 1)."""
    case = gmm_case(80, 2, 1)
    p = float(case.posterior.weights.max())
    shares = []
    for r in range(runs):
        post = get_sampler(name, num_steps=steps).sample(case.problem, case.prior, n, seed=100 + r)
        shares.append(float(post.weights()[_top_mode(case, post.samples)].sum()))
    return {"exact": p, "mean": statistics.fmean(shares), "sd": statistics.stdev(shares),
            "iid_sd": (p * (1 - p) / n) ** 0.5, "shares": shares}


def large_n(name: str, dy: int, seed: int, particles: int, n: int = 1000, steps: int = 100,
            reverse_variance: str = "analytic") -> dict:
    """``particles`` resampled to ``n`` draws against the ``n``-sample floor (module docstring, part 3)."""
    case = gmm_case(80, dy, seed)
    g = torch.Generator().manual_seed(10_000 + seed)
    t0 = time.perf_counter()
    if name == "exact":  # the metric's own spread: exact draws in the sampler's place
        x = case.posterior.sample(n, torch.Generator().manual_seed(20_000 + seed))
    else:
        post = get_sampler(name, num_steps=steps, reverse_variance=reverse_variance).sample(
            case.problem, case.prior, particles, seed=seed)
        x = post.resample(n, g)
    wall = time.perf_counter() - t0
    ref1, ref2 = case.posterior.sample(n, g), case.posterior.sample(n, g)
    floor = sliced_wasserstein(ref2, ref1, 1000, seed=seed)
    return {"ratio": sliced_wasserstein(x, ref1, 1000, seed=seed) / floor, "floor": floor, "time_s": wall}


def main(argv=None) -> int:
    """Run the selected parts; write JSON and print a summary."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["spread", "share", "large-n"], choices=["spread", "share", "large-n"])
    p.add_argument("--samplers", nargs="+", default=["tds", "mcgdiff", "afes"],
                   help="SMC samplers (part 3 also takes 'exact': exact draws in the sampler's place)")
    p.add_argument("--share-particles", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--large-n", type=int, default=16384, help="particles of part 3")
    p.add_argument("--dy", type=int, nargs="+", default=[1, 2, 4], help="measurement counts of part 3")
    p.add_argument("--reverse-variance", default="analytic", choices=["analytic", "ancestral"],
                   help="SMC reverse kernel of part 3")
    p.add_argument("--steps", type=int, default=100, help="EDM levels of part 3")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="data/benchmarks/smc_d80_study.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    shown = " ".join(argv if argv is not None else sys.argv[1:])
    out = {"command": f"python scripts/benchmarks/studies/smc_d80_study.py {shown}",
           "threads": args.threads, "date": time.strftime("%Y-%m-%d")}
    if "spread" in args.parts:
        out["spread"] = {f"{s}/{rv}": unobserved_spread(s, rv) for s in args.samplers
                         for rv in ("ancestral", "analytic")}
        print("| sampler / kernel | unobserved variance of the top mode (exact 1) |\n|---|---|")
        for k, v in out["spread"].items():
            print(f"| {k} | {v:.3f} |")
    if "share" in args.parts:
        out["share"] = {f"{s}/{n}": mode_share(s, n) for s in args.samplers for n in args.share_particles}
        print("\n| sampler / N | top-mode weight: exact | mean over 8 runs | sd | sd of N exact draws "
              "|\n|---|---|---|---|---|")
        for k, v in out["share"].items():
            print(f"| {k} | {v['exact']:.3f} | {v['mean']:.3f} | {v['sd']:.3f} | {v['iid_sd']:.3f} |")
    if "large-n" in args.parts:
        out["large_n"] = {}
        print(f"\n| sampler | dy | N | steps | SW / floor, {1000} draws (median, mean) | per seed | time / run (s) |"
              "\n|---|---|---|---|---|---|---|")
        for s in args.samplers:
            for dy in args.dy:
                rs = [large_n(s, dy, seed, args.large_n, steps=args.steps, reverse_variance=args.reverse_variance)
                      for seed in range(5)]
                ratios = [r["ratio"] for r in rs]
                out["large_n"][f"{s}/{dy}"] = rs
                print(f"| {s} | {dy} | {args.large_n} | {args.steps} | {statistics.median(ratios):.2f}, "
                      f"{statistics.fmean(ratios):.2f} | "
                      f"{' '.join(f'{r:.2f}' for r in ratios)} | "
                      f"{statistics.fmean(r['time_s'] for r in rs):.1f} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(args.out, overwrite=True) as tmp:
        tmp.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
