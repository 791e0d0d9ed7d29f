"""The SMC samplers at 16,384 particles on Gaussian-mixture instances the suite never used: collapse and accuracy.

The suite's Gaussian-mixture table uses seeds 0-19; this study runs ``--samplers`` (TDS, AFES at its default
inflation, MCGdiff; ``afes:C`` is AFES with inflation C; 100 steps, :data:`inverse.problems.GMM_SETTINGS`) on seeds
``--first-seed`` onwards, d = 8 and 80, dy = 1, 2, 4, with ``--particles`` particles, and records per instance the
smallest effective sample size along the run (and its step), the final one, and the sliced-Wasserstein ratio to the
exact posterior with both sides averaged over 5 reference draws (:func:`inverse.problems.averaged_sw_ratio`, 1,000
draws, 500 slices). One JSON line per
instance in ``--out`` (resumable); the summary table goes to stdout.

    python scripts/benchmarks/studies/smc_unseen_study.py --d 8 80 --first-seed 20 --seeds 11 \
        --samplers tds afes mcgdiff --out data/benchmarks/smc_unseen_study.jsonl

Run from the repository root by path; it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import torch

from inverse.problems import GMM_SETTINGS, averaged_sw_ratio, gmm_case
from samplers import get_sampler

__all__ = ["run_cell", "main"]


def run_cell(name: str, d: int, dy: int, seed: int, particles: int, steps: int = 100) -> dict:
    """One sampler run on instance ``(d, dy, seed)``: ESS record and averaged SW ratio. ``afes:C`` is AFES with
    inflation ``C``."""
    case = gmm_case(d, dy, seed)
    base, _, arg = name.partition(":")
    settings = {**GMM_SETTINGS.get(base, {}), "num_steps": steps, **({"inflation": float(arg)} if arg else {})}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        post = get_sampler(base, **settings).sample(case.problem, case.prior, particles, seed=seed)
    wall = time.perf_counter() - t0
    r = averaged_sw_ratio(case, post, 1000, refs=5, seed=seed, num_slices=500)
    dg = post.diagnostics
    return {"ratio": r["ratio"], "min_ess": dg["min_ess"], "min_ess_step": dg["min_ess_step"],
            "final_ess": dg["final_ess"], "time_s": wall}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, nargs="+", default=[8, 80])
    p.add_argument("--dy", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--first-seed", type=int, default=20)
    p.add_argument("--seeds", type=int, default=11)
    p.add_argument("--samplers", nargs="+", default=["tds", "afes", "mcgdiff"])
    p.add_argument("--particles", type=int, default=16384)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="data/benchmarks/smc_unseen_study.jsonl")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    done = {(r["sampler"], r["d"], r["dy"], r["seed"], r["particles"]) for r in rows}
    for name in a.samplers:
        for d in a.d:
            for dy in a.dy:
                for seed in range(a.first_seed, a.first_seed + a.seeds):
                    key = (name, d, dy, seed, a.particles)
                    if key in done:
                        continue
                    row = {"sampler": name, "d": d, "dy": dy, "seed": seed, "particles": a.particles,
                           **run_cell(name, d, dy, seed, a.particles)}
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print("\n| sampler | d | instances | median SW / floor | max | instances above 1.5 | smallest ESS (of "
          f"{a.particles}) | median smallest ESS |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.samplers:
        for d in a.d:
            rs = [r for r in rows if r["sampler"] == name and r["d"] == d and r["particles"] == a.particles]
            if not rs:
                continue
            ratios = [r["ratio"] for r in rs]
            print(f"| {name} | {d} | {len(rs)} | {statistics.median(ratios):.2f} | {max(ratios):.2f} | "
                  f"{sum(x > 1.5 for x in ratios)} | {min(r['min_ess'] for r in rs):.0f} | "
                  f"{statistics.median(r['min_ess'] for r in rs):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
