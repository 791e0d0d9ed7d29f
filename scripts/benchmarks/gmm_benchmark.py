"""Gaussian-mixture exact-posterior benchmark (Cardoso et al., ICLR 2024) for every sampler.

Each cell (d, dy, steps, sampler) runs ``--seeds`` independent instances (the seed draws the
weights, operator, truth and noise) and records sliced Wasserstein-1 to exact posterior samples
beside the floor (two exact sets of the same size), the mode-weight total variation beside its
floor, wall time and NFE per sample. SMC samplers (tds, mcgdiff, afes) also record their
log-evidence estimate and its error ``|log Z_hat - log Z|`` against the exact evidence (the error of
``log Z``, i.e. ``|log(Z_hat / Z)|``); ``--particles`` runs each cell at several particle counts
(one particle per returned sample, so the floor is that of ``particles`` samples).
Results are appended to a JSON-lines file as they finish
(a re-run skips finished cells), and ``--report`` writes the Markdown table into docs/benchmarks/studies.md.

    python scripts/benchmarks/gmm_benchmark.py --d 8 80 800 --dy 1 2 4 --steps 20 100 --seeds 20 \
        --out data/benchmarks/gmm.jsonl
    python scripts/benchmarks/gmm_benchmark.py --report data/benchmarks/gmm.jsonl --markdown docs/benchmarks/studies.md
    python scripts/benchmarks/gmm_benchmark.py --d 8 80 --dy 1 2 4 --steps 100 --seeds 5 \
        --samplers tds mcgdiff afes dps --particles 16 64 256 --out data/benchmarks/smc.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from report import machine_line, markdown_table

from inverse.problems import GMM_SETTINGS, evaluate_sampler, gmm_case
from samplers import get_sampler


def run_cells(args) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["d"], r["dy"], r["steps"], r["sampler"], r["seed"], r["num_samples"]))
    torch.set_num_threads(args.threads)
    counts = args.particles or [args.num_samples]
    for d in args.d:
        for dy in args.dy:
            for steps in args.steps:
                for name in args.samplers:
                    for n in counts:
                        for seed in range(args.first_seed, args.first_seed + args.seeds):
                            if (d, dy, steps, name, seed, n) in done:
                                continue
                            rec = run_one(d, dy, steps, name, seed, n, args)
                            with open(out, "a") as f:
                                f.write(json.dumps(rec) + "\n")
                            dz = rec.get("log_evidence_abs_err")
                            print(f"d={d} dy={dy} steps={steps} {name} n={n} seed={seed}: sw/floor="
                                  f"{rec['sw'] / rec['sw_floor']:.2f} tv={rec['tv']:.3f}"
                                  + (f" |dlogZ|={dz:.3f}" if dz is not None else "") + f" {rec['time_s']:.1f}s",
                                  flush=True)


def run_one(d, dy, steps, name, seed, n, args) -> dict:
    """One cell and seed: scores, and for SMC samplers the evidence estimate beside the exact one."""
    case = gmm_case(d, dy, seed)
    settings = {**GMM_SETTINGS.get(name, {}), **(json.loads(args.settings).get(name, {}) if args.settings else {})}
    sampler = get_sampler(name, num_steps=steps, **settings)
    r = evaluate_sampler(case, sampler, n, seed=seed, num_slices=args.slices)
    diag = r.pop("posterior").diagnostics
    rec = {"d": d, "dy": dy, "steps": steps, "sampler": name, "seed": seed, **r,
           "settings": settings, "num_samples": n, "particles": n, "threads": args.threads}
    if "log_evidence" in diag:
        rec.update(log_evidence=diag["log_evidence"], log_evidence_exact=case.log_evidence,
                   log_evidence_abs_err=abs(diag["log_evidence"] - case.log_evidence),
                   final_ess=diag["final_ess"], num_resampling=diag["num_resampling"])
    return rec


def report(paths, markdown: str | None, command: str, block: str = "gmm-table",
           title: str = "Gaussian-mixture exact posterior") -> str:
    recs = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    cells = {}
    for r in recs:
        cells.setdefault((r["d"], r["dy"], r["steps"], r["sampler"], r["num_samples"]), []).append(r)
    lines = [
        machine_line(recs[0]["threads"] if recs else 1, "float64, 1000 slices, samples per run = particles (column n)"),
        "Settings: " + ", ".join(f"{k} {v}" for k, v in GMM_SETTINGS.items()) + " (guidance in the paper's VP units); "
        "SMC samplers at their defaults. |dlog Z|: median |log Z_hat - log Z| over seeds (SMC only). "
        "SW and mode TV of a weighted (SMC) posterior are those of its weighted particles; 'resampled' "
        "scores n draws resampled from them (multinomial), which adds resampling noise.",
        "",
        "| d | dy | steps | sampler | n | seeds | SW (mean) | floor (mean) | SW / floor (median [q10, q90]) "
        "| SW / floor (mean) | resampled SW / floor (median) "
        "| mode TV | TV floor | abs. log-evidence error (median) | time / run (s) | NFE / sample |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(cells):
        rs = cells[key]
        ratio = sorted(r["sw"] / r["sw_floor"] for r in rs)
        q = lambda p, ratio=ratio: ratio[min(len(ratio) - 1, int(p * len(ratio)))]  # noqa: E731
        mean = lambda k, rs=rs: statistics.fmean(r[k] for r in rs)  # noqa: E731
        rs_ratio = statistics.median(r.get("sw_resampled", r["sw"]) / r["sw_floor"] for r in rs)
        dz = [r["log_evidence_abs_err"] for r in rs if "log_evidence_abs_err" in r]
        dz_txt = f"{statistics.median(dz):.3f}" if dz else "-"
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {len(rs)} | {mean('sw'):.3f} | "
                     f"{mean('sw_floor'):.3f} | {statistics.median(ratio):.2f} [{q(0.1):.1f}, {q(0.9):.1f}] | "
                     f"{statistics.fmean(ratio):.2f} | {rs_ratio:.2f} | "
                     f"{mean('tv'):.3f} | {mean('tv_floor'):.3f} | {dz_txt} | {mean('time_s'):.2f} | "
                     f"{mean('nfe_per_sample'):.0f} |")
    return markdown_table(command, "\n".join(lines), markdown, key=block, heading=title)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, nargs="+", default=[8, 80, 800])
    p.add_argument("--dy", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--steps", type=int, nargs="+", default=[20, 100])
    p.add_argument("--samplers", nargs="+", default=["dps", "mcg"])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds first-seed .. first-seed + seeds - 1 (tuning on held-out seeds: e.g. 100)")
    p.add_argument("--settings", default=None,
                   help='JSON of per-sampler settings over the defaults, e.g. \'{"pnp-dm": {"prior_steps": 20}}\'')
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--particles", type=int, nargs="+", default=None,
                   help="run every cell at these particle counts (num_samples = particles); overrides --num-samples")
    p.add_argument("--slices", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="data/benchmarks/gmm.jsonl")
    p.add_argument("--report", nargs="+", metavar="JSONL", help="write the table from these result files")
    p.add_argument("--markdown", default=None, help="Markdown file whose GMM table block is replaced")
    p.add_argument("--command", default="python scripts/benchmarks/gmm_benchmark.py --d 8 80 800 --dy 1 2 4 --steps "
                                        "20 100 --seeds 20")
    p.add_argument("--block", default="gmm-table", help="name of the BENCHMARKS.md block to replace")
    p.add_argument("--title", default="Gaussian-mixture exact posterior", help="heading of that block")
    args = p.parse_args(argv)
    if args.report:
        print(report(args.report, args.markdown, args.command, args.block, args.title))
        return 0
    t0 = time.time()
    run_cells(args)
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
