"""``inverse demo``: run the embedded default problem (CT, or the 2-D mixture with ``--toy``), :mod:`inverse.demo`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    d = subparsers.add_parser("demo", help="run the embedded default problem and write a posterior and a figure")
    d.add_argument("--out", default="inverse-demo", help="output directory (default: ./inverse-demo)")
    d.add_argument("--toy", action="store_true",
                   help="the 2-D Gaussian-mixture demo against the exact posterior instead of CT")
    d.add_argument("--sampler", default="dps", help="sampler name (default dps)")
    d.add_argument("--num-samples", type=int, default=None, help="posterior samples (default 8; toy: 1000)")
    d.add_argument("--steps", type=int, default=None, help="sampler steps (default 50; toy: 100)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--overwrite", action="store_true", help="replace existing output files")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    return d


def run(args) -> int:
    """Run the demo; prints the paths written and the closing numbers."""
    from types import SimpleNamespace

    from inverse.demo import CT_DEMO, run_ct_demo, run_demo
    from inverse.reconstruction import check_num_samples, sampler_for
    from inverse.validation import check_output_dir, check_seed

    # every argument fails here, before any work: sampler name and steps, seed, sample count, output directory
    sampler_for(args.sampler, "*", args.steps if args.steps is not None else (100 if args.toy else None))
    check_seed(args.seed)
    size = CT_DEMO["options"]["size"]
    shapes = SimpleNamespace(input_shape=(2,), output_shape=(1,)) if args.toy else \
        SimpleNamespace(input_shape=(1, size, size), output_shape=(1, CT_DEMO["options"]["angles"], 2 * size))
    if args.num_samples is not None:
        check_num_samples(args.num_samples, shapes)
    check_output_dir(args.out, "--out")
    if not args.toy:
        s = run_ct_demo(args.out, sampler=args.sampler, num_samples=args.num_samples, steps=args.steps,
                        seed=args.seed, overwrite=args.overwrite, progress=not args.quiet)
        print(s["summary"])
        print(f"measurements: {s['measurements']}\nposterior:    {s['netcdf']}\nfigure:       {s['figure']}")
        return 0
    s = run_demo(args.out, sampler=args.sampler, num_samples=1000 if args.num_samples is None else args.num_samples,
                 steps=100 if args.steps is None else args.steps,
                 seed=args.seed, overwrite=args.overwrite, progress=not args.quiet)
    print(f"posterior: {s['netcdf']}\nfigure:    {s['figure']}\n"
          f"sliced Wasserstein-1 to the exact posterior {s['sliced_wasserstein']:.3f} (floor {s['floor']:.3f}), "
          f"mode-weight TV {s['mode_tv']:.3f}; {s['nfe']} network evaluations in {s['wall_time_s']:.1f} s")
    return 0
