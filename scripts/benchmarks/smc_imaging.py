"""SMC on CT and MRI 64 x 64 with ``phantoms-64``: posterior-mean PSNR / SSIM and 90% pixel coverage.

Problems as in the suite's imaging benchmark (``scripts/benchmarks/imaging.py``): ``ct-30`` (30 views,
noise 2% of the clean sinogram's RMS) and ``mri-x4`` (single-coil Cartesian, x4, same noise rule),
held-out phantoms ``0 .. n-1``. Each sampler runs through :func:`inverse.reconstruction.reconstruct` with
its defaults for the problem (:data:`inverse.reconstruction.DEFAULT_SETTINGS`) at ``--steps`` steps;
for the SMC samplers the ``--particles`` particles are the samples (resampled to equal weights at
the end), DPS draws as many independent samples. Scores are those of ``inverse reconstruct``'s
summary: PSNR and SSIM of the posterior mean, coverage of the 5%-95% pixel interval. Writes one JSON
line per run and the ``smc-imaging`` block of docs/benchmarks/studies.md.

    python scripts/benchmarks/smc_imaging.py --instances 5 --particles 16 --steps 50

Run from the repository root by path; it imports its siblings in ``scripts/benchmarks/`` by name.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from common import mean_sd
from imaging import PROBLEMS
from report import machine_line, replace_markdown_block

from inverse.measurements import simulate
from inverse.reconstruction import reconstruct

__all__ = ["main", "run", "table"]

#: the repository (default output paths)
ROOT = Path(__file__).resolve().parents[2]


def run(labels, samplers, instances: int, particles: int, steps: int, out: Path) -> None:
    """Run every (problem, sampler, instance) not yet in ``out``, appending one JSON line each."""
    from priors import load_prior

    done = set()
    if out.is_file():
        done = {(r["problem"], r["sampler"], r["seed"], r["particles"], r["steps"])
                for r in map(json.loads, out.read_text().splitlines())}
    prior = None
    for label in labels:
        name, opts = PROBLEMS[label]
        for seed in range(instances):
            m = None
            for smp in samplers:
                if (label, smp, seed, particles, steps) in done:
                    continue
                prior = prior or load_prior("phantoms-64")
                m = m or simulate(name, options=opts, seed=seed)
                t0 = time.perf_counter()
                post = reconstruct(m, prior, smp, num_samples=particles, seed=seed, steps=steps)
                d = post.diagnostics
                r = {"problem": label, "sampler": smp, "seed": seed, "particles": particles, "steps": steps,
                     "psnr": d["psnr"], "ssim": d.get("ssim"), "coverage_90": d.get("coverage_90"),
                     "relative_l2": d["relative_l2"], "wall_time_s": time.perf_counter() - t0, "nfe": d.get("nfe"),
                     "final_ess": d.get("final_ess"), "num_resampling": d.get("num_resampling"),
                     "view_psnr": d.get("view_psnr")}
                print(json.dumps(r), flush=True)
                with open(out, "a") as f:
                    f.write(json.dumps(r) + "\n")


def table(recs: list[dict], command: str) -> str:
    """Markdown: one row per (problem, sampler)."""
    r0 = recs[0]
    lines = [f"Command: `{command}`", "",
             machine_line(torch.get_num_threads(), f"{r0['steps']} steps, {r0['particles']} particles / samples "
                          "per posterior", seeds=f"phantoms 0-{max(r['seed'] for r in recs)}"), "",
             "| problem | sampler | instances | PSNR of mean (mean ± sd) | SSIM | 90% coverage | time / posterior (s) "
             "| "
             "NFE / posterior | resampling steps |", "|---|---|---|---|---|---|---|---|---|"]
    cells = {}
    for r in recs:
        cells.setdefault((r["problem"], r["sampler"]), []).append(r)
    labels = list(dict.fromkeys(r["problem"] for r in recs))
    names = list(dict.fromkeys(r["sampler"] for r in recs))
    for (label, smp), rs in sorted(cells.items(), key=lambda kv: (labels.index(kv[0][0]), names.index(kv[0][1]))):
        resamplings = [r["num_resampling"] for r in rs if r.get("num_resampling") is not None]
        res_col = f"{statistics.fmean(resamplings):.1f}" if resamplings else "-"
        lines.append(f"| {label} | {smp} | {len(rs)} | {mean_sd((r['psnr'] for r in rs), 2)} | "
                     f"{statistics.fmean(r['ssim'] for r in rs):.3f} | "
                     f"{statistics.fmean(r['coverage_90'] for r in rs):.3f} | "
                     f"{statistics.fmean(r['wall_time_s'] for r in rs):.0f} | "
                     f"{statistics.fmean(r['nfe'] for r in rs):.0f} | "
                     f"{res_col} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run, append JSON lines to --out, write the Markdown block."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problems", nargs="+", default=["ct-30", "mri-x4"], choices=list(PROBLEMS))
    p.add_argument("--samplers", nargs="+", default=["tds", "mcgdiff", "dps"])
    p.add_argument("--instances", type=int, default=5)
    p.add_argument("--particles", type=int, default=16)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "data" / "benchmarks" / "smc_imaging.jsonl"))
    p.add_argument("--markdown", default=str(ROOT / "docs" / "benchmarks" / "studies.md"))
    args = p.parse_args(argv)
    if args.instances < 1 or args.particles < 2 or args.steps < 1:
        raise SystemExit("need --instances >= 1, --particles >= 2 (coverage needs samples) and --steps >= 1")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run(args.problems, args.samplers, args.instances, args.particles, args.steps, out)
    # the table shows every sampler run at this configuration (also by other invocations into --out)
    recs = [r for r in map(json.loads, out.read_text().splitlines())
            if r["particles"] == args.particles and r["steps"] == args.steps and r["problem"] in args.problems
            and r["seed"] < args.instances]
    command = "python scripts/benchmarks/smc_imaging.py " + " ".join(argv if argv is not None else sys.argv[1:])
    replace_markdown_block(args.markdown, "smc-imaging", "SMC on CT and MRI with phantoms-64",
                           table(recs, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
