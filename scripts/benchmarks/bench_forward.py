"""Forward and forward+gradient time of every registered forward model at its documented size.

For each operator in ``forward_models.REGISTRY`` with a benchmark instance: median wall time of
``F(x)`` and of ``F(x)`` followed by the gradient of ``<F(x), w>`` (a VJP), at batch 1 and batch
16 (``--batches``), float32, ``--threads`` threads, after a warm-up call. Writes JSON and replaces
the forward-model block of docs/benchmarks/components.md.

    python scripts/benchmarks/bench_forward.py --threads 1 --markdown docs/benchmarks/components.md
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from report import machine_line, median_time, publish, script_command

from forward_models.registry import REGISTRY, benchmark_operator


def bench(name: str, batches, repeats: int) -> list[dict]:
    t0 = time.perf_counter()
    op = benchmark_operator(name)
    build = time.perf_counter() - t0
    rows = []
    for b in batches:
        x = op.example_input(b, 0, torch.float32)
        fwd = median_time(lambda x=x: op(x), repeats)
        grad = None
        if op.differentiable:
            w = torch.randn(b, *op.output_shape)

            def fg(x=x, w=w):
                xg = x.clone().requires_grad_(True)
                torch.autograd.grad((op(xg) * w).sum(), xg)

            grad = median_time(fg, repeats)
        rows.append({"operator": name, "class": type(op).__name__, "input": list(op.input_shape),
                     "output": list(op.output_shape), "batch": b, "forward_s": fwd, "forward_grad_s": grad,
                     "build_s": build})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def to_markdown(rows, threads: int, command: str, note: str = "") -> str:
    lines = [f"Command: `{command}`", "",
             machine_line(threads, "float32, median of repeats after one warm-up") + (f" {note}" if note else ""), "",
             "| operator | input | output | batch | forward (ms) | forward + gradient (ms) | construction (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        g = "n/a (not differentiable)" if r["forward_grad_s"] is None else f"{1e3 * r['forward_grad_s']:.1f}"
        lines.append(f"| {r['operator']} ({r['class']}) | {tuple(r['input'])} | {tuple(r['output'])} | {r['batch']} | "
                     f"{1e3 * r['forward_s']:.2f} | {g} | {r['build_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--operators", nargs="+", default=None, help="registry names (default: all)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="data/benchmarks/forward.json")
    p.add_argument("--markdown", default=None)
    p.add_argument("--note", default="", help="a sentence printed under the table's header (e.g. machine load)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.operators or sorted(REGISTRY)
    rows = [r for n in names for r in bench(n, args.batches, args.repeats)]
    table = to_markdown(rows, args.threads, script_command("bench_forward", argv), args.note)
    publish(rows, table, json_path=args.json, markdown=args.markdown, key="forward-table",
            heading="Forward models: time per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
