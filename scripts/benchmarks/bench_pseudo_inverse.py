"""Damped pseudo-inverse ``A^T (A A^T + d I)^{-1} y``: time per call and error of each solver.

MCG's projection calls it once per step (``d = (sigma_y / s')^2``). For the imaging operators of the
benchmark suite at 64 x 64 (real images, as the ``phantoms-64`` prior produces): single- and
multi-coil Cartesian MRI (``RealImageMRI``; per-row SVD, the default, against the generic conjugate
gradients of ``ForwardModel``) and 30-view parallel-beam CT (``ParallelBeamCT``; the eigendecomposition
of ``A A^T``, the default, against the same conjugate gradients). Error: relative
to the exact solution in float64 (the per-row SVD for MRI, checked against the dense solve in
``tests/forward_models/test_mri.py``; a dense solve of the float64 matrix for CT). Batch 8, float32,
median of ``--repeats`` calls after one warm-up; the exact routes' one-time factorisation (cached on
the operator, for CT per geometry and process) is reported apart. Writes JSON and, with ``--markdown``,
replaces its block in docs/benchmarks/components.md.

    python scripts/benchmarks/bench_pseudo_inverse.py --threads 1 --markdown docs/benchmarks/components.md
"""

from __future__ import annotations

import argparse
import time

import torch
from imaging import PROBLEMS as SUITE_PROBLEMS
from report import machine_line, median_time, publish, script_command

from forward_models import ForwardModel
from forward_models.tomography import ParallelBeamCT, range_basis
from inverse.problems import build_forward_model

__all__ = ["main"]

PROBLEMS = {"mri-x4": "single-coil MRI x4", "mri-mc-x4": "8-coil MRI x4", "ct-30": "CT, 30 views"}
DAMPINGS = (1e-4, 1e-2, 1.0)


def _exact(op, y64: torch.Tensor, damping: float) -> torch.Tensor:
    """Float64 reference: the per-row SVD where the operator has one, else a dense solve."""
    if hasattr(op, "_row_svd") and op._row_svd() is not None:
        return op.pseudo_inverse(y64, damping=damping)
    A = op.matrix().double()
    Y = y64.reshape(len(y64), -1).T
    Z = A.T @ torch.linalg.solve(A @ A.T + damping * torch.eye(A.shape[0], dtype=A.dtype), Y)
    return Z.T.reshape(len(y64), *op.input_shape)


def _exact_route(op):
    """``(name, factorise)`` of the operator's own exact solver (``factorise()`` computes its cached factors
    from scratch and says whether the route applies), or None."""
    if hasattr(op, "_row_svd"):
        return "per-row SVD", lambda: op._row_svd() is not None
    if isinstance(op, ParallelBeamCT):
        def factorise():
            range_basis.cache_clear()
            op._basis_cache.clear()
            op.prepare_pseudo_inverse()
            return op._exact_pinv
        return "eigendecomposition of A A^T", factorise
    return None


def bench(label: str, repeats: int, batch: int = 8) -> list[dict]:
    """Rows (solver, damping, seconds per call, relative error) for one suite problem."""
    name, options = SUITE_PROBLEMS[label]
    op = build_forward_model(name, options)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *op.input_shape, generator=g, dtype=torch.float64)
    y64 = op(x)
    y64 = y64 + 0.02 * y64.pow(2).mean().sqrt() * torch.randn(y64.shape, generator=g, dtype=torch.float64)
    y = y64.float()
    solvers = {"conjugate gradients": lambda d: ForwardModel.pseudo_inverse(op, y, damping=d)}
    factor_s, route = None, _exact_route(op)
    if route is not None:
        t0 = time.perf_counter()
        applies = route[1]()
        factor_s = time.perf_counter() - t0
        if applies:
            solvers = {route[0]: lambda d: op.pseudo_inverse(y, damping=d), **solvers}
    rows = []
    for d in DAMPINGS:
        ref = _exact(op, y64, d)
        for name, fn in solvers.items():
            out = fn(d)
            err = float((out.double() - ref).norm() / ref.norm())
            rows.append({"problem": label, "operator": PROBLEMS[label], "solver": name, "damping": d,
                         "batch": batch, "seconds": median_time(lambda fn=fn, d=d: fn(d), repeats),
                         "relative_error": err,
                         "factorisation_s": factor_s if route is not None and name == route[0] else None})
            print(rows[-1], flush=True)
    return rows


def to_markdown(rows, threads: int, command: str) -> str:
    """The Markdown block (pseudo-inverse-table)."""
    lines = [f"Command: `{command}`", "",
             machine_line(threads, f"float32, batch {rows[0]['batch']}, median after one warm-up")
             + " Error relative to the exact float64 solution.",
             "", "| operator | solver | damping | time per call (ms) | relative error | one-time factorisation (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        f = "" if r["factorisation_s"] is None else f"{r['factorisation_s']:.2f}"
        lines.append(f"| {r['operator']} | {r['solver']} | {r['damping']:g} | {1e3 * r['seconds']:.1f} | "
                     f"{r['relative_error']:.1e} | {f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="data/benchmarks/pseudo_inverse.json")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be positive")
    torch.set_num_threads(args.threads)
    rows = [r for label in args.problems for r in bench(label, args.repeats)]
    table = to_markdown(rows, args.threads, script_command("bench_pseudo_inverse", argv))
    publish(rows, table, json_path=args.json, markdown=args.markdown, key="pseudo-inverse-table",
            heading="Pseudo-inverse (MCG's projection): time and error")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
