"""The ``inverse reconstruct-batch`` command: one posterior per measurement file, over processes and nodes.

    inverse reconstruct-batch ys/ --out-dir posteriors/ --prior gaussian --num-samples 8
    inverse reconstruct-batch ys/ --out-dir posteriors/ --devices 4 --strategy ddp --accelerator gpu

Writes ``OUT_DIR/<stem>-posterior.nc`` for every measurement (:mod:`inverse.batch`); a rerun skips the
measurements that have a posterior, so a killed job is restarted by running the same command. Bad
arguments raise a user error (:mod:`inverse.errors`) or ``FileNotFoundError`` (one line, exit code 2 from
``inverse``); exit code 1 when some measurement could not be reconstructed (the others are written).
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``reconstruct-batch`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser("reconstruct-batch", help="posteriors of many measurement files, one file each "
                              "(Lightning: several processes, GPUs or nodes; restarts skip finished files)")
    p.add_argument("measurements", nargs="+", help="a directory of measurement files, or the files")
    p.add_argument("--out-dir", required=True, help="directory of the posteriors (<stem>-posterior.nc)")
    p.add_argument("--prior", default=None, help="shipped prior name, directory, or gaussian[:STD] "
                   "(default: each problem's prior)")
    p.add_argument("--sampler", default=None, help="sampler name (default: as 'inverse reconstruct')")
    p.add_argument("--num-samples", type=int, default=8, help="posterior samples per measurement (default 8)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the tuned setting)")
    p.add_argument("-s", "--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="sampler setting, repeatable (e.g. -s zeta=0.5)")
    p.add_argument("--seed", type=int, default=0, help="base seed; each file's seed is derived from it and its name")
    p.add_argument("--devices", default="1", help="Lightning devices (processes) per node (default 1)")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    p.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--overwrite", action="store_true", help="recompute posteriors that exist")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    """Run the batch; rank 0 prints what all processes did, skipped and failed (one line)."""
    import torch

    from inverse.batch import reconstruct_batch
    from inverse.cli import parse_key_values
    from inverse.errors import UserError
    from inverse.validation import check_seed, check_threads

    for flag, value in (("--out-dir", args.out_dir), ("--sampler", args.sampler), ("--prior", args.prior),
                        ("--devices", args.devices), ("--strategy", args.strategy),
                        ("--accelerator", args.accelerator)):
        if value is not None and not str(value).strip():  # an empty value is not the default
            raise UserError(f"{flag}: the value is empty")
    check_seed(args.seed)
    if check_threads(args.threads) is not None:
        torch.set_num_threads(args.threads)
    devices = int(args.devices) if str(args.devices).lstrip("-").isdigit() else args.devices
    source = args.measurements[0] if len(args.measurements) == 1 and not args.measurements[0].endswith(".nc") \
        else args.measurements
    if args.quiet:
        logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    options = parse_key_values(args.sampler_option, "-s")
    res = reconstruct_batch(source, args.out_dir, args.prior, args.sampler, num_samples=args.num_samples,
                            seed=args.seed, steps=args.steps, sampler_options=options,
                            overwrite=args.overwrite, accelerator=args.accelerator, devices=devices,
                            num_nodes=args.num_nodes, strategy=args.strategy, progress=not args.quiet)
    if res["rank"] != 0:
        return 0
    counts = ", ".join(f"{v} {k}" for k, v in sorted(res["totals"].items())) or "nothing to do"
    procs = f" by {res['processes']} processes" if res["processes"] > 1 else ""
    print(f"{len(res['outputs'])} measurements: {counts}{procs}; posteriors in {args.out_dir}")
    if res["missing"]:
        print(f"inverse reconstruct-batch: {len(res['missing'])} without a posterior: {', '.join(res['missing'])}",
              file=sys.stderr)
        return 1
    return 0
