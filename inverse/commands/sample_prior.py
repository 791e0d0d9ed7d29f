"""``inverse sample-prior``: unconditional samples of a prior as NetCDF (:meth:`priors.Prior.sample`).

    inverse sample-prior phantoms-64 --num-samples 16 --out samples.nc --figure samples.png --steps 32 --seed 0

``NAME`` is a shipped prior (``inverse priors``), a prior directory (diffusers layout), or ``gaussian[:STD]``
(white noise ``N(0, STD^2 I)`` of ``--shape``). Diffusion and flow priors integrate the probability-flow ODE
with ``--steps`` Heun steps; Gaussian priors draw exactly. The samples are written in physical units, with the
dimension names and units of the prior's card, in the posterior file format (``inverse plot`` and
:func:`inverse.open_posterior` read it). Every flag is checked before the prior is loaded; nothing is written
on failure.
"""

from __future__ import annotations

import argparse
import inspect
import math

__all__ = ["add_parser", "run", "MAX_SAMPLES", "MAX_STEPS", "MAX_EVALUATIONS", "BATCH_SIZE"]

#: most samples one call draws
MAX_SAMPLES = 100_000
#: most ODE steps (the shipped priors use 18 to 64)
MAX_STEPS = 10_000
#: most network evaluations one call makes (samples x (2 steps - 1) for the ODE): a runaway guard
MAX_EVALUATIONS = 10_000_000
#: samples integrated at a time (the latents are drawn at once, so the result does not depend on it)
BATCH_SIZE = 64
#: most samples shown in the figure's grid
GRID = 16


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sample-prior`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser("sample-prior", help="draw unconditional samples of a prior as NetCDF")
    p.add_argument("name", metavar="NAME", help="shipped prior name, prior directory, or gaussian[:STD]")
    p.add_argument("--num-samples", type=int, default=16, help=f"samples to draw, 1..{MAX_SAMPLES} (default 16)")
    p.add_argument("--out", required=True, help="output NetCDF file of the samples")
    p.add_argument("--figure", default=None, help=f"also write a grid of the first {GRID} samples (PNG)")
    p.add_argument("--steps", type=int, default=None,
                   help="probability-flow ODE steps for diffusion / flow priors (default: the prior's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise, 0..2**63-1 (default 0)")
    p.add_argument("--shape", default="1,64,64", help="shape of one sample of a gaussian prior (default 1,64,64)")
    p.add_argument("--data-range", default=None, metavar="LOW,HIGH",
                   help="physical range the model's [-1, 1] stands for, for a folder without prior.json")
    p.add_argument("--units", default=None, help="physical units of the samples (overrides the card's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def _check(args):
    """All flag checks, before any work; returns ``(out, figure, steps, data_range)``."""
    from inverse.errors import UserError
    from inverse.validation import check_device, check_distinct_paths, check_output_path, check_seed

    if not 1 <= args.num_samples <= MAX_SAMPLES:
        raise UserError(f"--num-samples must be an integer in 1..{MAX_SAMPLES}, got {args.num_samples}")
    if args.steps is not None and not 2 <= args.steps <= MAX_STEPS:
        raise UserError(f"--steps must be an integer in 2..{MAX_STEPS}, got {args.steps}")
    check_seed(args.seed)
    check_device(args.device)
    out = check_output_path(args.out, "--out", overwrite=args.overwrite)
    figure = None if args.figure is None else check_output_path(args.figure, "--figure", overwrite=args.overwrite)
    check_distinct_paths([("--out", out), ("--figure", figure)])
    data_range = None
    if args.data_range is not None:
        try:
            data_range = tuple(float(v) for v in args.data_range.split(","))
        except ValueError:
            data_range = ()
        if len(data_range) != 2 or not all(map(math.isfinite, data_range)) or not data_range[0] < data_range[1]:
            raise UserError(f"--data-range {args.data_range!r} must be LOW,HIGH with finite LOW < HIGH")
    if args.units is not None and len(args.units) > 200:
        raise UserError(f"--units is {len(args.units)} characters long; at most 200 are allowed")
    return out, figure, args.steps, data_range


def _gaussian(name: str, shape_text: str):
    """``gaussian`` / ``gaussian:STD`` as ``N(0, STD^2 I)`` on samples of ``shape_text`` (``C,H,W``)."""
    import torch

    from inverse.errors import UserError
    from priors import GaussianPrior

    std = 1.0
    if ":" in name:
        try:
            std = float(name.split(":", 1)[1])
        except ValueError:
            raise UserError(f"{name!r}: the standard deviation after 'gaussian:' must be a number") from None
    if not (math.isfinite(std) and std > 0):
        raise UserError(f"{name!r}: the standard deviation must be a positive number")
    try:
        shape = tuple(int(s) for s in shape_text.replace("x", ",").split(","))
    except ValueError:
        raise UserError(f"--shape {shape_text!r} must be sizes separated by commas, e.g. 1,64,64") from None
    if not 1 <= len(shape) <= 4 or min(shape) < 1 or math.prod(shape) > 2**24:
        raise UserError(f"--shape {shape_text!r}: 1 to 4 positive sizes, at most {2**24} values in all")
    return GaussianPrior(torch.zeros(shape), std=std, dtype=torch.float32)


def _load(args, data_range):
    from inverse.errors import UserError
    from priors import load_prior

    if args.name == "gaussian" or args.name.startswith("gaussian:"):
        if data_range is not None or args.units is not None:
            raise UserError("--data-range and --units apply to network priors, not to gaussian")
        prior = _gaussian(args.name, args.shape)
        return prior.to(args.device) if args.device else prior
    return load_prior(args.name, device=args.device, data_range=data_range, units=args.units)


def _check_cost(prior, n: int, steps: int | None) -> None:
    """Refuse a draw that would not fit in memory, or run for days (before any sampling)."""
    from inverse.errors import UserError
    from inverse.validation import format_bytes, memory_limit_bytes
    from priors import Prior

    if type(prior).sample is Prior.sample:  # the ODE sampler: 2 steps - 1 network evaluations per sample
        steps = steps if steps is not None else inspect.signature(Prior.sample).parameters["num_steps"].default
        evaluations = n * (2 * steps - 1)
        if evaluations > MAX_EVALUATIONS:
            raise UserError(f"--num-samples {n} with --steps {steps} needs {evaluations:.3g} network evaluations; "
                            f"one call makes at most {MAX_EVALUATIONS:.0e}: draw fewer samples per call, with other "
                            "seeds")

    need = 3 * n * math.prod(prior.shape) * 8  # latents, samples, and their float64 copy for the file
    limit = memory_limit_bytes(0.5)
    if need > limit:
        raise UserError(f"--num-samples {n} of shape {tuple(prior.shape)} needs about {format_bytes(need)}; "
                        f"this machine allows {format_bytes(limit)}: draw fewer samples per call")


def _figure(samples, prior_name: str, units: str):
    """A grid of the first :data:`GRID` samples (images: channel 0; vectors: one line each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = samples[:GRID].detach().cpu().double().numpy()
    if x.ndim == 2:  # vectors
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for row in x:
            ax.plot(row, lw=0.8)
        ax.set(xlabel="index", ylabel=units or "value", title=f"{prior_name}: {len(x)} prior samples")
        return fig
    imgs = x.reshape(len(x), -1, *x.shape[-2:])[:, 0]
    finite = imgs[np.isfinite(imgs)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    cols = min(4, len(imgs))
    rows = math.ceil(len(imgs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, imgs, strict=False):
        im = ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    fig.colorbar(im, ax=axes, shrink=0.8, label=(units or "a.u.")[:60])
    fig.suptitle(f"{prior_name[:60]}: prior samples")
    return fig


def run(args) -> int:
    """Draw the samples, write the NetCDF (and the figure); prints the path, shape, units and range."""
    import torch

    from priors import Prior
    from samplers import Posterior
    from samplers.posterior import package_version

    out, figure, steps, data_range = _check(args)
    prior = _load(args, data_range)
    _check_cost(prior, args.num_samples, steps)
    x = prior.sample(args.num_samples, steps=steps, seed=args.seed, physical=True, batch_size=BATCH_SIZE)
    units = getattr(getattr(prior, "normalisation", None), "units", "") or ""
    name = str(getattr(prior, "card", {}).get("name") or args.name)
    ode = type(prior).sample is Prior.sample  # else an exact sampler, which takes no steps
    steps = steps if steps is not None else inspect.signature(Prior.sample).parameters["num_steps"].default
    config = {"kind": "prior-samples", "prior": prior.config(), "prior_name": name, "num_samples": args.num_samples,
              "sampler": "probability-flow ODE (Heun)" if ode else "exact",
              "steps": steps if ode else None, "seed": args.seed, "package_version": package_version()}
    post = Posterior(x.detach().cpu(), config=config, dims=getattr(prior, "dims", None), units=units,
                     diagnostics={"nonfinite": int((~torch.isfinite(x)).sum())})
    fig = _figure(x, name, units) if figure is not None else None
    written = [post.to_netcdf(out, overwrite=args.overwrite)]
    if fig is not None:
        from inverse.figures import save_figure

        try:
            written.append(save_figure(fig, figure, overwrite=args.overwrite))
        except BaseException:
            if not args.overwrite:  # the NetCDF was new: leave no partial result
                out.unlink(missing_ok=True)
            raise
    lo, hi = float(x.min()), float(x.max())
    print(f"samples: {', '.join(map(str, written))}  ({args.num_samples} of shape {tuple(prior.shape)}, "
          f"{units or 'no units'}, range {lo:.4g}..{hi:.4g}, seed {args.seed})")
    return 0
