"""Radial MRI: time of the forward map plus its adjoint with each non-uniform FFT engine.

:class:`forward_models.radial_mri.RadialMRI` at ``--size`` (64) with ``--spokes`` (32) golden-angle spokes of
``2 size`` samples, single-coil and ``--coils`` (8) coils, complex image input: median wall time of
``A^H (A x)`` for the engines "finufft" (FINUFFT type 2 / type 1, tolerance 1e-12 in float64, 1e-6 in float32)
and "torchkbnufft" (Kaiser-Bessel interpolation, table look-up), float64 and float32, batches 1 and 16, with
the relative difference of each engine's ``A x`` from FINUFFT's float64 one. Writes JSON and replaces the
NUFFT block of docs/benchmarks/components.md.

    python scripts/benchmarks/bench_nufft.py --threads 1 --markdown docs/benchmarks/components.md
"""

from __future__ import annotations

import argparse
import json

import torch
from report import machine_line, median_time, publish, script_command

from forward_models.coils import synthetic_coil_maps
from forward_models.radial_mri import ENGINES, RadialMRI


def bench(size: int, spokes: int, coils: int, batches, repeats: int, device: str) -> list[dict]:
    maps = synthetic_coil_maps(coils, size, size, seed=0, dtype=torch.float64) if coils > 1 else None
    ref_op = RadialMRI(size, spokes, coil_maps=maps)
    rows = []
    for b in batches:
        x64 = ref_op.example_input(b, 0, torch.float64)
        with torch.no_grad():
            ref = ref_op(x64)
        for engine in ENGINES:
            for dtype in (torch.float64, torch.float32):
                op = RadialMRI(size, spokes, coil_maps=maps, engine=engine).to(device=device, dtype=dtype)
                x = x64.to(device=device, dtype=dtype)
                with torch.no_grad():
                    err = float((op(x).double().cpu() - ref).norm() / ref.norm())
                    t = median_time(lambda op=op, x=x: op.adjoint(op(x)), repeats)
                rows.append({"engine": engine, "dtype": str(dtype).removeprefix("torch."), "coils": max(coils, 1),
                             "batch": b, "size": size, "spokes": spokes, "device": device,
                             "forward_adjoint_s": t, "relative_difference": err})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def to_markdown(rows, threads, command: str) -> str:
    r0 = rows[0]
    lines = [f"Command: `{command}`", "",
             machine_line(threads, f"{r0['device']}, median of repeats after one warm-up"), "",
             f"{r0['size']} x {r0['size']} complex image, {r0['spokes']} golden-angle spokes of {2 * r0['size']} "
             "samples; time of one forward map and one adjoint; difference: relative l2 distance of `A x` from "
             "FINUFFT's float64 result.", "",
             "| engine | dtype | coils | batch | forward + adjoint (ms) | difference from FINUFFT float64 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['dtype']} | {r['coils']} | {r['batch']} | "
                     f"{1e3 * r['forward_adjoint_s']:.2f} | {r['relative_difference']:.1e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--spokes", type=int, default=32)
    p.add_argument("--coils", type=int, nargs="+", default=[1, 8])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default="data/benchmarks/nufft.json")
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [r for c in args.coils for r in bench(args.size, args.spokes, c, args.batches, args.repeats, args.device)]
    table = to_markdown(rows, args.threads, script_command("bench_nufft", argv))
    publish(rows, table, json_path=args.json, markdown=args.markdown, key="nufft-table",
            heading="Radial MRI: non-uniform FFT engines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
