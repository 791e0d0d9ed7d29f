"""Network evaluation time of each shipped prior at batch 1, 8 and 32 (one denoiser call, no
gradient, and with a vector-Jacobian product as DPS needs), float32, median of repeats after a
warm-up (CUDA timings synchronise the device). Writes the prior-timing block of docs/benchmarks/components.md
(``--device cuda``: the prior-timing-gpu block).

    python scripts/benchmarks/bench_priors.py --threads 1 --markdown docs/benchmarks/components.md
    python scripts/benchmarks/bench_priors.py --device cuda --markdown docs/benchmarks/components.md
"""

from __future__ import annotations

import argparse
import sys

import torch
from report import machine_line, median_time, replace_markdown_block

from priors import load_prior, shipped_priors
from samplers.base import resolve_device


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--priors", nargs="+", default=None)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--markdown", default=None)
    p.add_argument("--note", default="")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else args.threads
    names = args.priors or sorted(shipped_priors())
    lines = [f"Command: `python scripts/benchmarks/bench_priors.py "
             f"{' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             machine_line(where, "float32", note=args.note), "",
             "| prior | parameters | batch | denoise (ms) | denoise + VJP (ms) |", "|---|---|---|---|---|"]
    for name in names:
        prior = load_prior(name, device=device)
        n_par = sum(q.numel() for q in prior.parameters())
        for b in args.batches:
            x = torch.randn(b, *prior.shape, device=device)
            s = torch.full((b,), 0.5, device=device)
            with torch.no_grad():
                t_eval = median_time(lambda prior=prior, x=x, s=s: prior.denoise(x, s), args.repeats)

            def vjp(prior=prior, x=x, s=s):
                xg = x.clone().requires_grad_(True)
                torch.autograd.grad(prior.denoise(xg, s).sum(), xg)

            t_vjp = median_time(vjp, args.repeats)
            lines.append(f"| {name} | {n_par / 1e6:.2f} M | {b} | {1e3 * t_eval:.1f} | {1e3 * t_vjp:.1f} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    if args.markdown:
        if device.type == "cuda":
            replace_markdown_block(args.markdown, "prior-timing-gpu", "Priors: network evaluation time on a GPU", table)
        else:
            replace_markdown_block(args.markdown, "prior-timing", "Priors: network evaluation time", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
