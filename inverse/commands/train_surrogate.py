"""The ``inverse train-surrogate`` command: a neural surrogate of a forward model, trained on solver runs.

    inverse train-surrogate --problem darcy --resolution 32 --modes 32 --num-examples 2000 --steps 3000 --out sur32

Draws ``num-examples`` log-permeability fields from a Matern Karhunen-Loeve prior
(:class:`priors.function_space.MaternField`), solves the forward model on each (the training data), and fits a
:class:`forward_models.surrogate.NeuralSurrogate` (an MLP on the KL coefficients, predicting log-pressure)
with pytorch-lightning. Writes ``OUT/surrogate.safetensors`` and ``OUT/surrogate.json`` (architecture,
normalisation, the forward model's and prior's configuration, training cost, held-out relative error).
Bad arguments raise :class:`inverse.errors.UserError` (one line, exit code 2 from ``inverse``).
"""

from __future__ import annotations

import argparse
import logging
import time

__all__ = ["add_parser", "run"]

_PROBLEMS = ("darcy",)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train-surrogate`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser("train-surrogate", help="train a neural surrogate of a forward model on solver runs "
                              "(pytorch-lightning; safetensors + JSON card)")
    p.add_argument("--problem", default="darcy", help="forward model: darcy (log-permeability -> pressure at sensors)")
    p.add_argument("--resolution", type=int, default=32, help="grid of the parameter field (default 32)")
    p.add_argument("--sensors", type=int, default=5, help="n for an n x n sensor grid (default 5)")
    p.add_argument("--modes", type=int, default=32, help="Karhunen-Loeve modes of the Matern prior (default 32)")
    p.add_argument("--prior-sigma", type=float, default=6.0, help="Matern amplitude sigma (default 6: std ~0.9)")
    p.add_argument("--num-examples", type=int, default=2000, help="solver runs for training (default 2000)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (default 3000)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128], help="MLP hidden widths (default 128 128)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing surrogate in OUT")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _check_arguments(args) -> None:
    """Every setting and the output directory, before any solve: one-line :class:`UserError`."""
    import math
    from pathlib import Path

    from inverse.errors import UserError

    bounds = {"--resolution": (args.resolution, 4, 4096), "--sensors": (args.sensors, 1, 4096),
              "--modes": (args.modes, 1, 10**6), "--num-examples": (args.num_examples, 20, 10**8),
              "--steps": (args.steps, 1, 10**9), "--threads": (args.threads, 1, 4096),
              "--seed": (args.seed, 0, 2**32 - 1)}
    for flag, (value, low, high) in bounds.items():
        if not low <= int(value) <= high:
            raise UserError(f"{flag} must be an integer in {low}..{high}, got {value}")
    if not args.hidden or any(not 1 <= h <= 65536 for h in args.hidden):
        raise UserError(f"--hidden needs widths in 1..65536, got {args.hidden}")
    for flag, value in (("--lr", args.lr), ("--prior-sigma", args.prior_sigma)):
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"{flag} must be a finite number > 0, got {value}")
    out = Path(args.out)
    if not str(args.out).strip():
        raise UserError("--out must name a directory")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a directory")
    held = [f.name for f in (out / "surrogate.safetensors", out / "surrogate.json") if f.exists()]
    if held and not args.overwrite:
        raise UserError(f"{out} already holds a surrogate ({', '.join(held)}; pass --overwrite to replace it)")


def run(args) -> int:
    """Generate the training data, train, save; prints one summary line."""
    import torch

    from forward_models.darcy import DarcyFlow
    from forward_models.surrogate import save_surrogate, train_surrogate
    from inverse.errors import UserError
    from priors.function_space import MaternField

    if args.problem not in _PROBLEMS:
        raise UserError(f"unknown problem {args.problem!r} (known: {', '.join(_PROBLEMS)})")
    _check_arguments(args)
    torch.set_num_threads(int(args.threads))
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    prior = MaternField(args.resolution, args.modes, sigma=args.prior_sigma)
    op = DarcyFlow(args.resolution, coefficient="exp", sensors=args.sensors)
    t0 = time.perf_counter()
    xi = torch.randn(args.num_examples, args.modes, generator=torch.Generator().manual_seed(args.seed),
                     dtype=torch.float64)
    with torch.no_grad():
        x = prior.field(xi)
        y = op(x)
    solve_time = time.perf_counter() - t0
    model, card = train_surrogate(x, y, projection=(prior.basis * prior.eigenvalues.sqrt()[:, None]).float(),
                                  hidden=tuple(args.hidden), steps=args.steps, lr=args.lr, log_output=True,
                                  seed=args.seed, progress=not args.quiet)
    card.update({"forward_model": op.config(), "prior": prior.config(), "input": "log-permeability field",
                 "data_generation_time_s": solve_time,
                 "command": "inverse train-surrogate " + " ".join(
                     f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                     if k not in ("command", "overwrite", "quiet", "func"))})
    out = save_surrogate(model, args.out, card, overwrite=args.overwrite)
    print(f"surrogate written to {out}: {args.num_examples} solves ({solve_time:.1f} s), training "
          f"{card['train_time_s']:.1f} s, held-out relative error "
          f"{card.get('val_relative_error_median', float('nan')):.4f} (median)")
    return 0
