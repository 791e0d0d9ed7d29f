"""The ``inverse`` command line.

Every error a user can cause (bad arguments, missing files, existing outputs, invalid values)
ends with one line on stderr and exit code 2, never a traceback; outputs are written atomically.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    p = _Parser(prog="inverse", description="Probabilistic inverse problems with diffusion priors: "
                "sample posteriors, report mean and uncertainty.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    d = sub.add_parser("demo", help="run the embedded default problem and write a posterior and a figure")
    d.add_argument("--out", default="inverse-demo", help="output directory (default: ./inverse-demo)")
    d.add_argument("--sampler", default="dps", help="sampler name (dps, mcg)")
    d.add_argument("--num-samples", type=int, default=1000, help="posterior samples (default 1000)")
    d.add_argument("--steps", type=int, default=100, help="reverse diffusion steps (default 100)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--overwrite", action="store_true", help="replace existing output files")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("version", help="print the package version")
    return p


def _demo(args) -> int:
    from inverse.demo import run_demo
    from samplers import get_sampler

    get_sampler(args.sampler)  # an unknown name fails here, before any work
    s = run_demo(args.out, sampler=args.sampler, num_samples=args.num_samples, steps=args.steps,
                 seed=args.seed, overwrite=args.overwrite, progress=not args.quiet)
    print(f"posterior: {s['netcdf']}\nfigure:    {s['figure']}\n"
          f"sliced Wasserstein-1 to the exact posterior {s['sliced_wasserstein']:.3f} (floor {s['floor']:.3f}), "
          f"mode-weight TV {s['mode_tv']:.3f}; {s['nfe']} network evaluations in {s['wall_time_s']:.1f} s")
    return 0


def main(argv=None) -> int:
    """Entry point of the ``inverse`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "version":
            from inverse import __version__
            print(__version__)
            return 0
        if args.command == "demo":
            return _demo(args)
    except KeyboardInterrupt:
        print("inverse: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError) as e:
        print(f"inverse {args.command}: error: {e}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
