"""``inverse simulate``: noisy measurements of a named problem as NetCDF (:func:`inverse.measurements.simulate`).

    inverse simulate --problem ct -o angles=20 --noise-rel 0.02 --seed 0 --out y.nc
"""

from __future__ import annotations

import argparse

from inverse.cli import parse_key_values

__all__ = ["add_parser", "run"]


def _problem_epilog() -> str:
    from inverse.problems import PROBLEMS

    lines = ["problems and their options (defaults):"]
    for name, spec in PROBLEMS.items():
        opts = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        lines.append(f"  {name:15s} {spec.description}; prior {spec.prior or '(none shipped)'}\n"
                     f"  {'':15s} -o {opts}")
    return "\n".join(lines)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to an ``argparse`` subparsers object; returns its parser.

    Its epilog (the problems and their options) is built only when the help is shown: it imports torch.
    """
    s = subparsers.add_parser("simulate", help="simulate noisy measurements of a named problem as NetCDF",
                              epilog=_problem_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--problem", required=True, help="ct, mri, mri-multicoil, navier-stokes, darcy, fwi, seismic-interp")
    s.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="problem option, repeatable (e.g. -o angles=20); see the list below")
    s.add_argument("--truth", default=None,
                   help="ground truth file (.nc, .npy or an image); default: drawn with --seed")
    s.add_argument("--noise-rel", type=float, default=None, help="noise std relative to the RMS of the clean data")
    s.add_argument("--noise-std", type=float, default=None, help="absolute noise std (measurement units)")
    s.add_argument("--seed", type=int, default=0, help="seed of the truth and the noise (default 0)")
    s.add_argument("--out", required=True, help="output measurement file (.nc)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return s


def run(args) -> int:
    """Simulate and write the measurement file; prints its path, shape and noise level."""
    from inverse.measurements import simulate
    from inverse.problems import get_problem, problem_options
    from inverse.validation import check_distinct_paths, check_output_path, check_seed

    get_problem(args.problem)
    out = check_output_path(args.out, "--out", overwrite=args.overwrite)
    check_distinct_paths([("--truth", args.truth), ("--out", out)])
    check_seed(args.seed)
    options = parse_key_values(args.option, "-o")
    problem_options(args.problem, **options)  # names, types and sizes, before anything is allocated
    m = simulate(args.problem, options=options, truth=args.truth, seed=args.seed,
                 noise_rel=args.noise_rel, noise_std=args.noise_std)
    m.to_netcdf(out, overwrite=args.overwrite)
    print(f"measurements: {out}  ({args.problem}, y of shape {tuple(m.y.shape)}, noise sigma {m.noise.sigma:.4g})")
    return 0
