"""Network evaluation time of each shipped prior at batch 1, 8 and 32 (one denoiser call, no
gradient, and with a vector-Jacobian product as DPS needs), float32, median of repeats after a
warm-up. Writes the prior-timing block of BENCHMARKS.md.

    python scripts/bench_priors.py --threads 1 --markdown BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inverse.report import median_time, replace_markdown_block  # noqa: E402
from priors import load_prior, shipped_priors  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", nargs="+", default=None)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", default=None)
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.priors or sorted(shipped_priors())
    lines = [f"Command: `python scripts/bench_priors.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s), "
             f"float32; load average {os.getloadavg()[0]:.1f}; {dt.date.today().isoformat()}. {args.note}", "",
             "| prior | parameters | batch | denoise (ms) | denoise + VJP (ms) |", "|---|---|---|---|---|"]
    for name in names:
        prior = load_prior(name)
        n_par = sum(q.numel() for q in prior.parameters())
        for b in args.batches:
            x = torch.randn(b, *prior.shape)
            s = torch.full((b,), 0.5)
            with torch.no_grad():
                t_eval = median_time(lambda: prior.denoise(x, s), args.repeats)

            def vjp():
                xg = x.clone().requires_grad_(True)
                torch.autograd.grad(prior.denoise(xg, s).sum(), xg)

            t_vjp = median_time(vjp, args.repeats)
            lines.append(f"| {name} | {n_par / 1e6:.2f} M | {b} | {1e3 * t_eval:.1f} | {1e3 * t_vjp:.1f} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    if args.markdown:
        replace_markdown_block(args.markdown, "prior-timing", "Priors: network evaluation time", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
