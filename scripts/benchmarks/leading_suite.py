"""The leading samplers (DAPS, PnP-DM, DiffPIR, DDRM) on the imaging suite's own instances, beside the suite's stored
rows of deepinv's DiffPIR and DPS, our DPS, MCG and MCGdiff, and the FBP / zero-filled view.

Each instance is simulated exactly as the suite does (``simulate(problem, options, seed)``, phantom seed = instance),
our four samplers run at their defaults through :func:`inverse.reconstruction.reconstruct` with the suite's prior
(``phantoms-64``), 8 samples and the instance as seed, and are scored by the suite's
:func:`imaging.score_samples` rules (PSNR / SSIM of the mean, coverage of the 5-95% pixel band). The other methods'
rows are read from the suite's store (``data/benchmarks/suite/imaging.jsonl``), so every method is compared on the
same instances and prior. Rows go to a :class:`common.ResultStore` as they finish (a re-run skips them).

    python scripts/benchmarks/leading_suite.py --problems ct-30 --instances 0-9 \
        --out data/benchmarks/leading_suite.jsonl
    python scripts/benchmarks/leading_suite.py --table data/benchmarks/leading_suite.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from common import ResultStore

NEW = ("daps", "pnp-dm", "diffpir", "ddrm")
STORED = ("view", "dps", "mcg", "mcgdiff", "tds", "deepinv-dps", "deepinv-diffpir")
SUITE = Path(__file__).resolve().parents[2] / "data" / "benchmarks" / "suite" / "imaging.jsonl"


def run_one(label: str, seed: int, name: str, prior) -> dict:
    from imaging import PROBLEMS

    from inverse.measurements import simulate
    from inverse.reconstruction import reconstruct

    problem, opts = PROBLEMS[label]
    m = simulate(problem, options=opts, seed=seed)
    t0 = time.perf_counter()
    post = reconstruct(m, prior, name, num_samples=8, seed=seed, fallback=False)
    d = post.diagnostics
    return {"psnr": d["psnr"], "ssim": d.get("ssim"), "coverage_90": d.get("coverage_90"),
            "coverage_90_predictive": d.get("coverage_90_predictive"),
            "relative_l2": d["relative_l2"], "misfit": d.get("misfit"),
            "time_per_sample_s": (time.perf_counter() - t0) / 8,
            "nfe_per_sample": d["nfe"] / 8, "forward_evals_per_sample": d["forward_evals"] / 8,
            "settings": post.config["sampler"]}


def table(path) -> str:
    ours = [{**r, **r["key"]} for r in ResultStore(path).records()]
    suite = [{**r, **r.get("key", {})} for r in ResultStore(SUITE).records()]  # the suite's store, same format
    lines = ["| problem | method | instances | PSNR (mean) | SSIM | coverage 90% (5-95% band) | coverage 90% "
             "(prediction interval) | NFE / sample | time / sample (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label in sorted({r["problem"] for r in ours}):
        seeds = sorted({r["seed"] for r in ours if r["problem"] == label and "psnr" in r})
        for method in (*STORED, *NEW):
            src = ours if method in NEW else suite
            rs = {r["seed"]: r for r in src if r.get("problem") == label and r.get("method") == method
                  and r.get("seed") in seeds and r.get("psnr") is not None and r.get("samples", 8) == 8}
            if len(rs) < len(seeds) or not seeds:
                continue
            rows = list(rs.values())
            mean = lambda k, rows=rows: statistics.fmean(r[k] for r in rows if r.get(k) is not None)  # noqa: E731
            cov = {k: [r[k] for r in rows if r.get(k) is not None] for k in ("coverage_90", "coverage_90_predictive")}
            shown = [f"{statistics.fmean(v):.2f}" if len(v) == len(rows) else "-" for v in cov.values()]
            lines.append(f"| {label} | {method} | {len(rows)} | {mean('psnr'):.2f} | {mean('ssim'):.3f} | "
                         + " | ".join(shown) + f" | {mean('nfe_per_sample'):.0f} | {mean('time_per_sample_s'):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="+", default=["ct-30"])
    p.add_argument("--instances", default="0-9", help="START-STOP, inclusive")
    p.add_argument("--methods", nargs="+", default=list(NEW), choices=NEW)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="data/benchmarks/leading_suite.jsonl")
    p.add_argument("--table", default=None, metavar="JSONL")
    a = p.parse_args(argv)
    if a.table:
        print(table(a.table))
        return 0
    torch.set_num_threads(a.threads)
    from priors import load_prior

    prior = load_prior("phantoms-64")
    start, stop = (int(v) for v in a.instances.split("-"))
    store = ResultStore(a.out)
    for label in a.problems:
        for seed in range(start, stop + 1):
            for name in a.methods:
                key = {"problem": label, "seed": seed, "method": name}
                if store.done(key):
                    continue
                try:
                    rec = run_one(label, seed, name, prior)
                except Exception as e:  # noqa: BLE001 - a failed cell is recorded, not fatal
                    rec = {"failed": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                print(json.dumps(store.add(key, rec))[:300], flush=True)
    print(table(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
