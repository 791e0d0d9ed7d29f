"""Choose the default sampler settings of ``inverse reconstruct`` per problem (``DEFAULT_SETTINGS``).

For each problem with a shipped prior and each guidance scale, reconstruct seeds 0..S-1 and record
the posterior mean's relative L2 / PSNR and the data misfit; the table printed at the end (and the
JSON lines in ``--out``) give the best scale per problem. Not a test: it takes tens of minutes.

    python scripts/tune_reconstruct.py --problems ct mri mri-multicoil darcy --zetas 0.3 1 3 \
        --seeds 2 --steps 50 --num-samples 4 --out data/benchmarks/tune_dps.jsonl
    python scripts/tune_reconstruct.py --problems ct mri mri-multicoil --sampler mcg --param alpha \
        --zetas 0.3 1 3 10 --seeds 2 --first-seed 10000 --steps 100 --out data/benchmarks/tune_mcg.jsonl

Run from the repository root by path; it imports only the installed packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from inverse.cli import parse_key_values
from inverse.measurements import simulate
from inverse.problems import problem_options
from inverse.reconstruction import reconstruct
from samplers import SamplerError

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="+", default=["ct", "mri", "mri-multicoil", "darcy"])
    p.add_argument("--sampler", default="dps")
    p.add_argument("--param", default="zeta", help="the sampler setting to scan")
    p.add_argument("--zetas", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds run from here (10000: the benchmark's held-out phantoms, outside its test instances)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--num-samples", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="problem option for every problem (repeatable), e.g. acceleration=8 (as `inverse simulate -o`)")
    p.add_argument("--out", default="data/benchmarks/tune_dps.jsonl")
    a = p.parse_args(argv)
    if a.seeds < 1 or a.first_seed < 0:
        p.error(f"--seeds must be >= 1 and --first-seed >= 0, got {a.seeds} and {a.first_seed}")
    try:  # parsed as `inverse simulate -o` parses them; unknown problems and options fail here, before any run
        options = parse_key_values(a.option, "--option")
        for prob in a.problems:
            problem_options(prob, **options)
    except (KeyError, ValueError) as e:
        p.error(str(e).strip("'\""))
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for prob in a.problems:
        for z in a.zetas:
            for seed in range(a.first_seed, a.first_seed + a.seeds):
                m = simulate(prob, options=options, seed=seed)
                rec = {"problem": prob, "sampler": a.sampler, **options, a.param: z, "seed": seed, "steps": a.steps}
                try:
                    post = reconstruct(m, None, a.sampler, num_samples=a.num_samples, steps=a.steps, seed=seed,
                                       sampler_options={a.param: z})
                    d = post.diagnostics
                    rec.update(relative_l2=d["relative_l2"], psnr=d["psnr"], misfit=d["misfit"],
                               coverage_90=d.get("coverage_90"), view_relative_l2=d.get("view_relative_l2"),
                               time_s=d["wall_time_s"])
                except SamplerError as e:
                    rec["error"] = str(e)
                rows.append(rec)
                with open(out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)
    print("\n| problem | " + a.param + " | rel. L2 (mean) | PSNR (mean) | misfit (mean) |")
    print("|---|---|---|---|---|")
    for prob in a.problems:
        for z in a.zetas:
            rs = [r for r in rows if r["problem"] == prob and r[a.param] == z and "error" not in r]
            if rs:
                print(f"| {prob} | {z} | {statistics.fmean(r['relative_l2'] for r in rs):.4f} | "
                      f"{statistics.fmean(r['psnr'] for r in rs):.2f} | "
                      f"{statistics.fmean(r['misfit'] for r in rs):.2f} |")
            else:
                print(f"| {prob} | {z} | diverged | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
