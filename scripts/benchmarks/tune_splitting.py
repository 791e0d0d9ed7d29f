"""Held-out tuning of the splitting samplers' image defaults: PnP-DM's final coupling ``rho_min`` and DiffPIR's
``zeta``, on phantoms the reported tables never use (seeds 10005-10006), CT-30 and MRI x4, 8 samples.

    python scripts/benchmarks/tune_splitting.py --out data/benchmarks/tune_splitting.jsonl
"""

import argparse
import json
from pathlib import Path

import torch

GRID = [("pnp-dm", {"rho_min": 0.05}), ("pnp-dm", {"rho_min": 0.02}), ("pnp-dm", {"rho_min": 0.01}),
        ("diffpir", {"zeta": 0.3}), ("diffpir", {"zeta": 0.1}), ("diffpir", {"zeta": 0.3, "lam": 1.0})]
PROBLEMS = {"ct-30": ("ct", {"angles": 30}), "mri-x4": ("mri", {"acceleration": 4.0})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[10005, 10006])
    p.add_argument("--out", default="data/benchmarks/tune_splitting.jsonl")
    a = p.parse_args()
    torch.set_num_threads(1)
    from inverse.measurements import simulate
    from inverse.reconstruction import reconstruct
    from priors import load_prior

    prior = load_prior("phantoms-64")
    out = Path(a.out)
    done = {json.dumps([r["problem"], r["seed"], r["sampler"], r["settings"]]) for r in
            map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    for label, (problem, opts) in PROBLEMS.items():
        for seed in a.seeds:
            m = simulate(problem, options=opts, seed=seed)
            for name, settings in GRID:
                if json.dumps([label, seed, name, settings]) in done:
                    continue
                post = reconstruct(m, prior, name, num_samples=8, seed=0, sampler_options=settings, fallback=False)
                d = post.diagnostics
                rec = {"problem": label, "seed": seed, "sampler": name, "settings": settings, "psnr": d["psnr"],
                       "misfit": d.get("misfit"), "coverage_90": d.get("coverage_90")}
                with out.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
