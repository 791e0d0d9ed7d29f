"""The cost of training a prior at a given size: data generation per example and optimiser seconds per step.

For each ``--sizes`` x ``--widths`` x ``--batch-sizes`` cell: ``inverse.datasets.make_dataset`` generates
``--examples`` training fields (timed, per example), then ``priors.training.train_prior`` runs ``--short`` and then
``--long`` optimiser steps from scratch; seconds per step is the difference of the two runs' ``train_time_s`` over
the difference of steps (the Lightning set-up cancels). One JSON line per cell in ``--out``; ``--markdown`` writes
the table. This is how the 128^2 priors' training is costed where no GPU is lent.

    python scripts/benchmarks/train_cost.py --dataset phantoms --sizes 64 128 --widths 32,64,64 32,64,64,128 \
        --out data/benchmarks/train_cost.jsonl --markdown BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from common import ResultStore
from report import machine_line, markdown_table, script_command

__all__ = ["measure", "main"]


def measure(dataset: str, size: int, widths: tuple, batch: int, examples: int, short: int, long: int) -> dict:
    """Data generation time per example and optimiser seconds per step of one cell."""
    from inverse.datasets import make_dataset
    from priors.training import train_prior

    t0 = time.perf_counter()
    data, norm, _ = make_dataset(dataset, examples, size, seed=0)
    gen = (time.perf_counter() - t0) / examples
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (short, long):
            out = train_prior(data, Path(tmp) / f"p{steps}", steps=steps, batch_size=batch, widths=widths,
                              checkpoint_every=10**6, overwrite=True, normalisation=norm)
            training = json.loads((out / "prior.json").read_text())["training"]
            times[steps], params = training["train_time_s"], training["parameters"]
    return {"generation_s_per_example": gen, "step_s": (times[long] - times[short]) / (long - short),
            "parameters": params}


def _table(records, threads) -> str:
    lines = [machine_line(threads, "float32, optimiser seconds per step (difference of two runs from scratch)"), "",
             "| data | size | UNet widths | parameters | batch | s / step | steps in 1 h "
             "| data generation (s / example) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        k = r["key"]
        lines.append(f"| {k['dataset']} | {k['size']}^2 | {k['widths']} | {r['parameters'] / 1e6:.2f} M "
                     f"| {k['batch']} | {r['step_s']:.2f} | {3600 / r['step_s']:.0f} "
                     f"| {r['generation_s_per_example']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", nargs="+", default=["phantoms"])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--widths", nargs="+", default=["32,64,64", "32,64,64,128"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
    p.add_argument("--examples", type=int, default=64)
    p.add_argument("--short", type=int, default=3)
    p.add_argument("--long", type=int, default=13)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="data/benchmarks/train_cost.jsonl")
    p.add_argument("--markdown", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    store = ResultStore(a.out)
    for dataset in a.dataset:
        for size in a.sizes:
            for w in a.widths:
                for batch in a.batch_sizes:
                    key = {"dataset": dataset, "size": size, "widths": w, "batch": batch, "threads": a.threads}
                    if store.done(key):
                        continue
                    rec = measure(dataset, size, tuple(int(x) for x in w.split(",")), batch, a.examples, a.short,
                                  a.long)
                    store.add(key, rec)
                    print(json.dumps({**key, **rec}), flush=True)
    records = [r for r in ResultStore(a.out).records() if r["key"]["dataset"] in a.dataset]
    markdown_table(script_command("train_cost", argv), _table(records, a.threads), a.markdown, key="train-cost",
                   heading="Training cost at 64^2 and 128^2 (CPU)")
    print(_table(records, a.threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
