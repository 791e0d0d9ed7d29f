"""The ``inverse calibrate`` command: simulate a data file for an example model, or calibrate one.

    inverse calibrate --model mri-t2 --simulate --truth T2=70 --sigma 0.02 --out t2.nc
    inverse calibrate --data t2.nc --out posterior.nc [--chains 4] [--warmup 500] [--samples 500]
                      [--seed 0] [--sigma S | --sigma unknown] [--prior T2=lognormal:4.4,0.5] [--overwrite]

Bad input (a missing file, an unknown model or parameter, NaN in the data, a bad number) raises a
user error (:mod:`inverse.errors`) / ``FileNotFoundError`` / ``FileExistsError`` with a one-line message,
which the main ``inverse`` command prints before exiting with code 2. Outputs are written atomically and never
replace an existing file without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

from inverse.errors import UserError
from inverse.validation import MAX_SEED, check_distinct_paths, check_output_path, check_seed, check_threads

__all__ = ["add_parser", "run"]

#: most chains, and most warm-up or kept draws per chain (and kept draws in all)
MAX_CHAINS, MAX_DRAWS = 4096, 10_000_000


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``calibrate`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "calibrate", help="calibrate a few physical parameters by NUTS (NumPyro), or simulate a data file",
        description="Posterior of the physical parameters of an example model (heat, layered-earth, "
                    "navier-stokes, mri-t2) given a NetCDF data file, written as ArviZ InferenceData NetCDF. "
                    "With --simulate, write a data file for the model instead.")
    p.add_argument("--model", default=None, help="heat, layered-earth, navier-stokes or mri-t2 "
                   "(default: the 'model' attribute of the data file)")
    p.add_argument("--data", default=None, help="data NetCDF file (observations 'y' with the design as coordinates)")
    p.add_argument("--out", required=True, help="output NetCDF: the posterior, or the data file with --simulate")
    p.add_argument("--simulate", action="store_true", help="simulate data from the model instead of calibrating")
    p.add_argument("--truth", nargs="+", default=[], metavar="NAME=VALUE",
                   help="parameter values for --simulate (default: the model's)")
    p.add_argument("--model-config", default=None, metavar="JSON",
                   help='constructor arguments for --simulate, e.g. \'{"num_layers": 2}\'')
    p.add_argument("--sigma", default=None, help="noise standard deviation: a number (known), or 'unknown' to "
                   "estimate it (default: the data file's noise_sigma if present, else unknown; "
                   "with --simulate: the model's typical level)")
    p.add_argument("--prior", nargs="+", default=[], metavar="NAME=FAMILY:ARGS",
                   help="priors, e.g. T2=lognormal:4.4,0.5 D=uniform:0,1 sigma=halfnormal:0.1 (families: "
                        "normal, lognormal, uniform, halfnormal, halfcauchy, exponential, gamma)")
    p.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    p.add_argument("--warmup", type=int, default=500, help="warm-up (adaptation) steps per chain (default 500)")
    p.add_argument("--samples", type=int, default=500, help="kept draws per chain (default 500)")
    p.add_argument("--chain-method", default="vectorized", help="vectorized (default), sequential or parallel")
    p.add_argument("--target-accept", type=float, default=0.8, help="NUTS target acceptance (default 0.8)")
    p.add_argument("--init", choices=["auto", "laplace", "prior"], default="auto",
                   help="chain starts: around the mode (laplace), at the prior median (prior), or auto (default)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: all chains in this process (vectorised); ray: one Ray task per chain, "
                   "chain i seeded seed + i (docs/scaling.md)")
    p.add_argument("--ray-address", default=None,
                   help="with --backend ray: an existing cluster ('auto', 'ray://HOST:10001'); default: a local one")
    p.add_argument("--threads", type=int, default=None, help="torch threads (navier-stokes; default: torch's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _pairs(items, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(f"{what} {item!r} must look like NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise UserError(f"{what} must be finite, got {text!r}")
    return v


def _check_common(args) -> None:
    """The flags both modes share: the output path, seed and thread count (before any work)."""
    check_output_path(args.out, "--out", overwrite=args.overwrite)
    check_seed(args.seed)
    check_threads(args.threads)


def _check_names(names, model) -> None:
    from forward_models.names import close_match_hint

    for name in names:
        if name not in model.parameters and name != "sigma":
            hint = close_match_hint(name, model.parameters, cutoff=0.5)
            raise UserError(f"{model.name} has no parameter {name!r}{hint} (parameters: {', '.join(model.parameters)})")


def _simulate(args) -> int:
    from inverse.calibration.distributions import describe_distribution
    from inverse.calibration.io import write_data
    from inverse.calibration.models import get_model_class

    if args.model is None:
        raise UserError("--simulate needs --model (heat, layered-earth, navier-stokes, mri-t2)")
    if args.data is not None:
        raise UserError("--simulate writes a data file; do not pass --data")
    _check_common(args)
    cls = get_model_class(args.model)
    config = {}
    if args.model_config:
        try:
            config = json.loads(args.model_config)
        except ValueError:
            raise UserError(f"--model-config is not valid JSON: {args.model_config!r}") from None
        if not isinstance(config, dict):
            raise UserError("--model-config must be a JSON object such as '{\"num_layers\": 2}'")
    try:
        model = cls(**config)
    except TypeError as e:
        raise UserError(f"--model-config does not fit {args.model}: {e}") from None
    truth = model.default_truth()
    given = _pairs(args.truth, "--truth")
    _check_names(given, model)
    if "sigma" in given:
        raise UserError("give the noise level with --sigma, not --truth sigma=...")
    truth.update({k: _number(v, f"--truth {k}") for k, v in given.items()})
    priors = model.default_priors()
    for k, v in truth.items():
        if not bool(priors[k].support(v)):
            raise UserError(f"--truth {k}={v:g} lies outside the support of the default prior "
                            f"{describe_distribution(priors[k])}")
    if args.sigma is None:
        sigma = model.sigma_scale
    else:
        sigma = _number(args.sigma, "--sigma")
        if sigma <= 0:
            raise UserError(f"--sigma must be positive, got {args.sigma}")
    y = model.simulate(truth, sigma, seed=args.seed)
    out = write_data(args.out, model, y, sigma=sigma, truth=truth, seed=args.seed, overwrite=args.overwrite)
    print(f"data written to {out}: model {model.name}, observations {y.shape}, sigma {sigma:g}, "
          f"truth {', '.join(f'{k}={v:g}' for k, v in truth.items())}")
    return 0


def _calibrate(args) -> int:
    from inverse.calibration.core import calibrate
    from inverse.calibration.diagnostics import format_summary
    from inverse.calibration.distributions import parse_distribution
    from inverse.calibration.io import read_data, write_inference_data
    from inverse.calibration.models import get_model_class

    if args.data is None:
        raise UserError("give --data FILE (or --simulate to make one)")
    if args.ray_address and args.backend != "ray":
        raise UserError("--ray-address needs --backend ray")
    if args.truth or args.model_config:
        raise UserError("--truth and --model-config belong to --simulate")
    for what, v, low, high in (("--chains", args.chains, 1, MAX_CHAINS), ("--warmup", args.warmup, 0, MAX_DRAWS),
                               ("--samples", args.samples, 1, MAX_DRAWS)):
        if v < low:
            raise UserError(f"{what} must be at least {low}, got {v}")
        if v > high:
            raise UserError(f"{what} must be at most {high}, got {v}")
    if args.chains * args.samples > MAX_DRAWS:
        raise UserError(f"--chains x --samples = {args.chains * args.samples} draws; at most {MAX_DRAWS} are kept")
    _check_common(args)
    check_distinct_paths([("--data", args.data), ("--out", args.out)])
    if args.seed + args.chains - 1 > MAX_SEED:
        raise UserError(f"--seed {args.seed}: chain i uses seed + i, which must stay at most {MAX_SEED}")
    if not 0 < args.target_accept < 1:
        raise UserError(f"--target-accept must lie in (0, 1), got {args.target_accept}")
    if args.model is not None:
        get_model_class(args.model)
    out = Path(args.out)
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    data = read_data(args.data, model=args.model)
    priors = {k: parse_distribution(v) for k, v in _pairs(args.prior, "--prior").items()}
    _check_names(priors, data.model)
    if args.sigma is None:
        sigma = data.sigma
    elif args.sigma.strip().lower() == "unknown":
        sigma = None
    else:
        sigma = _number(args.sigma, "--sigma")
        if sigma <= 0:
            raise UserError(f"--sigma must be positive, got {args.sigma}")
    if sigma is not None and "sigma" in priors:
        raise UserError("a prior for sigma was given, but the noise level is known; pass --sigma unknown")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.backend == "ray":
            from inverse.parallel import calibrate_chains_parallel

            idata = calibrate_chains_parallel(data.model, data.y, priors, sigma=sigma, num_chains=args.chains,
                                              num_warmup=args.warmup, num_samples=args.samples, seed=args.seed,
                                              target_accept_prob=args.target_accept, init=args.init,
                                              backend="ray", address=args.ray_address)
        else:
            idata = calibrate(data.model, data.y, priors, sigma=sigma, num_chains=args.chains, num_warmup=args.warmup,
                              num_samples=args.samples, seed=args.seed, chain_method=args.chain_method,
                              progress_bar=not args.quiet, target_accept_prob=args.target_accept, init=args.init)
    if data.truth is not None:
        idata.posterior.attrs["truth"] = json.dumps(data.truth, sort_keys=True)
    idata.posterior.attrs["data_file"] = str(args.data)
    write_inference_data(idata, out, overwrite=args.overwrite)
    print(format_summary(idata))
    for w in caught:
        if issubclass(w.category, (RuntimeWarning, UserWarning)) and "diverg" in str(w.message):
            print(f"inverse calibrate: warning: {w.message}", file=sys.stderr)
    print(f"posterior written to {out}")
    return 0


def run(args) -> int:
    """Run ``inverse calibrate`` for parsed arguments; returns the exit code (0), raises on bad input."""
    return _simulate(args) if args.simulate else _calibrate(args)
