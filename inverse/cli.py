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

    def format_help(self):
        """Help text; an epilog given as a callable is built only now (it may import torch)."""
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    p = _Parser(prog="inverse", description="Probabilistic inverse problems with diffusion priors: "
                "sample posteriors, report mean and uncertainty.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    d = sub.add_parser("demo", help="run the embedded default problem and write a posterior and a figure")
    d.add_argument("--out", default="inverse-demo", help="output directory (default: ./inverse-demo)")
    d.add_argument("--toy", action="store_true",
                   help="the 2-D Gaussian-mixture demo against the exact posterior instead of CT")
    d.add_argument("--sampler", default="dps", help="sampler name (default dps)")
    d.add_argument("--num-samples", type=int, default=None, help="posterior samples (default 8; toy: 1000)")
    d.add_argument("--steps", type=int, default=None, help="sampler steps (default 50; toy: 100)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--overwrite", action="store_true", help="replace existing output files")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    t = sub.add_parser("train-prior", help="train a diffusion (EDM) or flow-matching prior with pytorch-lightning")
    t.add_argument("--dataset", required=True, help="phantoms, gaussian-field, ns-vorticity, darcy-perm, seismic-velocity")
    t.add_argument("--size", type=int, default=64, help="image size (default 64)")
    t.add_argument("--num-examples", type=int, default=4096, help="training examples generated (default 4096)")
    t.add_argument("--kind", choices=["edm", "flow"], default="edm", help="EDM denoiser or flow matching")
    t.add_argument("--widths", type=int, nargs="+", default=[32, 64, 64], help="UNet channels per level")
    t.add_argument("--layers-per-block", type=int, default=1)
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=200, help="steps between Lightning checkpoints")
    t.add_argument("--out", required=True, help="output prior directory (diffusers layout + prior.json)")
    t.add_argument("--name", default=None, help="name recorded in the model card (default: the directory name)")
    t.add_argument("--resume", action="store_true", help="continue from OUT-work/checkpoints/last.ckpt")
    t.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    t.add_argument("--devices", type=int, default=1, help="Lightning devices (processes) per node")
    t.add_argument("--num-nodes", type=int, default=1)
    t.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    t.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    t.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop training after this many minutes of fitting and export what was trained "
                        "(the card records the steps done; default: no limit)")
    t.add_argument("--data-device", default="cpu",
                   help="device that generates the training data where the generator runs on one "
                        "(ns-vorticity: the Navier-Stokes solver), e.g. cuda (default cpu)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--data-cache", default=None,
                   help="cache the generated training data in this .safetensors file and reuse it on the next run "
                        "(default: OUT-work/dataset.safetensors; 'none' disables)")
    _add_simulate_reconstruct(sub)
    from inverse.calibration import cli as calibration_cli

    calibration_cli.add_parser(sub)
    __import__("inverse.surrogate_cli", fromlist=["add_parser"]).add_parser(sub)  # issue 6
    __import__("inverse.batch_cli", fromlist=["add_parser"]).add_parser(sub)  # issue 11
    pl = sub.add_parser("plot", help="figures of a result file: posterior images, or calibration summary / trace / pair plots")
    pl.add_argument("file", help="a NetCDF written by 'inverse reconstruct', 'inverse calibrate' or 'inverse demo'")
    pl.add_argument("--out", default=None,
                    help="output directory for the PNG files (default: beside FILE), or the .png file itself "
                         "for an image posterior")
    pl.add_argument("--overwrite", action="store_true", help="replace existing figures")
    pr = sub.add_parser("priors", help="list the shipped priors with their model cards")
    pr.add_argument("--json", action="store_true", help="print the full cards as JSON")
    sub.add_parser("version", help="print the package version")
    return p


def _problem_epilog() -> str:
    from inverse.problems import PROBLEMS

    lines = ["problems and their options (defaults):"]
    for name, spec in PROBLEMS.items():
        opts = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        lines.append(f"  {name:15s} {spec.description}; prior {spec.prior or '(none shipped)'}\n"
                     f"  {'':15s} -o {opts}")
    return "\n".join(lines)


def _add_simulate_reconstruct(sub) -> None:
    s = sub.add_parser("simulate", help="simulate noisy measurements of a named problem as NetCDF",
                       epilog=_problem_epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--problem", required=True, help="ct, mri, mri-multicoil, navier-stokes, darcy, fwi, seismic-interp")
    s.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="problem option, repeatable (e.g. -o angles=20); see the list below")
    s.add_argument("--truth", default=None, help="ground truth file (.nc, .npy or an image); default: drawn with --seed")
    s.add_argument("--noise-rel", type=float, default=None, help="noise std relative to the RMS of the clean data")
    s.add_argument("--noise-std", type=float, default=None, help="absolute noise std (measurement units)")
    s.add_argument("--seed", type=int, default=0, help="seed of the truth and the noise (default 0)")
    s.add_argument("--out", required=True, help="output measurement file (.nc)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    r = sub.add_parser("reconstruct", help="sample the posterior of a measurement file")
    r.add_argument("measurements", help="a file written by 'inverse simulate'")
    r.add_argument("--prior", default=None, help="shipped prior name, directory, or gaussian[:STD] (default: the problem's prior)")
    r.add_argument("--sampler", default=None, help="sampler name: dps, mcg, tds, mcgdiff, afes, enkg, eki "
                   "(default: dps; mcg for seismic-interp)")
    r.add_argument("--num-samples", type=int, default=8, help="posterior samples (default 8)")
    r.add_argument("--steps", type=int, default=None, help="sampler steps (default: the tuned setting)")
    r.add_argument("-s", "--sampler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="sampler setting, repeatable (e.g. -s zeta=0.5)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default=None, help="cpu or cuda (default: the prior's device, cpu)")
    r.add_argument("--out", required=True, help="output posterior file (.nc)")
    r.add_argument("--figure", default=None, help="also write the posterior figure (PNG)")
    r.add_argument("--overwrite", action="store_true", help="replace existing output files")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="save the sampler state to FILE (safetensors) every --checkpoint-every steps and on Ctrl-C")
    r.add_argument("--checkpoint-every", type=int, default=10, metavar="K", help="steps between checkpoints (default 10)")
    r.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint FILE (same measurements, prior, sampler settings and seed)")


def _key_values(items, what: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        k = k.strip().replace("-", "_")
        try:
            import json

            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _simulate(args) -> int:
    from pathlib import Path

    from inverse.measurements import simulate
    from inverse.problems import get_problem
    from samplers.atomic import OutputExistsError

    get_problem(args.problem)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"{out} already exists (pass --overwrite to replace it)")
    m = simulate(args.problem, options=_key_values(args.option, "-o"), truth=args.truth, seed=args.seed,
                 noise_rel=args.noise_rel, noise_std=args.noise_std)
    m.to_netcdf(out, overwrite=args.overwrite)
    print(f"measurements: {out}  ({args.problem}, y of shape {tuple(m.y.shape)}, noise sigma {m.noise.sigma:.4g})")
    return 0


def _reconstruct(args) -> int:
    from pathlib import Path

    import torch

    from inverse.figures import plot_image_posterior, save_figure
    from inverse.reconstruct import format_summary, reconstruct
    from samplers.atomic import OutputExistsError
    from samplers.errors import SamplerError

    out = Path(args.out)
    outputs = [out] + ([Path(args.figure)] if args.figure else [])
    for p in outputs:
        if p.exists() and not args.overwrite:
            raise OutputExistsError(f"{p} already exists (pass --overwrite to replace it)")
    if not Path(args.measurements).is_file():
        raise FileNotFoundError(f"measurement file {args.measurements} does not exist")
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if args.resume and ckpt is None:
        raise ValueError("--resume needs --checkpoint FILE")
    if ckpt is not None:
        if args.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every must be at least 1, got {args.checkpoint_every}")
        if args.resume and not ckpt.is_file():
            raise FileNotFoundError(f"--resume: checkpoint {ckpt} does not exist")
        if ckpt.exists() and not (args.resume or args.overwrite):
            raise OutputExistsError(f"checkpoint {ckpt} already exists (pass --resume to continue that run, "
                                    "or --overwrite to start afresh)")
        if ckpt.is_dir() or not (ckpt.parent if str(ckpt.parent) else Path(".")).is_dir():
            raise FileNotFoundError(f"--checkpoint {ckpt}: not a file in an existing directory")
    if args.device is not None:
        from samplers.base import resolve_device

        resolve_device(args.device)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        post = reconstruct(args.measurements, args.prior, args.sampler, num_samples=args.num_samples, seed=args.seed,
                           steps=args.steps, sampler_options=_key_values(args.sampler_option, "-s"),
                           device=args.device, progress=not args.quiet, checkpoint=ckpt,
                           checkpoint_every=args.checkpoint_every, resume=args.resume)
    except KeyboardInterrupt:
        if ckpt is not None and ckpt.is_file():
            print(f"inverse reconstruct: interrupted; the state is saved in {ckpt}: rerun with --resume",
                  file=sys.stderr)
        raise
    except SamplerError as e:  # a numerical failure: one line naming the step, exit 2
        print(f"inverse reconstruct: error: {e}", file=sys.stderr)
        return 2
    post.to_netcdf(out, overwrite=args.overwrite)
    print(format_summary(post))
    if post.diagnostics.get("weight_collapse"):
        print(f"warning: the SMC weights collapsed (smallest ESS {post.diagnostics.get('min_ess', 0):.2f} of "
              f"{post.num_samples} particles): use more particles or steps")
    print(f"posterior: {out}")
    if args.figure:
        save_figure(plot_image_posterior(post), args.figure, overwrite=args.overwrite)
        print(f"figure:    {args.figure}")
    return 0


def _plot(args) -> int:
    from pathlib import Path

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    out = Path(args.out) if args.out else path.parent
    png_out = None  # --out fig.png names the figure itself (image posteriors; one figure)
    if out.suffix.lower() == ".png":
        png_out, out = out, out.parent
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    import xarray as xr

    try:
        groups = set(xr.open_datatree(path, engine="h5netcdf").children)
    except Exception:
        groups = set()
    if "posterior" in groups:  # ArviZ InferenceData from 'inverse calibrate'
        from inverse.calibration.diagnostics import format_summary
        from inverse.calibration.io import read_inference_data
        from inverse.calibration.plots import plot_pair, plot_trace

        if png_out is not None:
            raise ValueError(f"--out {png_out}: a calibration result gives two figures (trace, pair); "
                             "--out names their directory")
        idata = read_inference_data(path)
        print(format_summary(idata))
        out.mkdir(parents=True, exist_ok=True)  # only once the file has been read
        t = plot_trace(idata, out / f"{path.stem}-trace.png", overwrite=args.overwrite)
        p = plot_pair(idata, out / f"{path.stem}-pair.png", overwrite=args.overwrite)
        print(f"trace plot: {t}\npair plot:  {p}")
        return 0
    from samplers import open_posterior

    post = open_posterior(path)
    from inverse.figures import plot_image_posterior, save_figure

    if post.samples.ndim < 3:
        raise ValueError(f"{path} holds vector samples of shape {tuple(post.samples.shape[1:])}: "
                         "'inverse plot' draws image posteriors (use Posterior.mean() / quantile() in Python)")
    png = png_out or out / f"{path.stem}.png"
    out.mkdir(parents=True, exist_ok=True)
    save_figure(plot_image_posterior(post), png, overwrite=args.overwrite)
    print(f"figure: {png}")
    return 0


def _priors(args) -> int:
    import json

    from priors import shipped_priors

    cards = shipped_priors()
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if not cards:
        print("no shipped priors found")
        return 0
    print(f"{'name':24s} {'kind':5s} {'shape':14s} {'units':22s} {'steps':>7s}  data")
    for name, c in cards.items():
        t = c.get("training", {})
        d = c.get("data", {})
        print(f"{name:24s} {c.get('kind', '?'):5s} {str(tuple(c.get('shape', []))):14s} "
              f"{c.get('units', c.get('normalisation', {}).get('units', '')):22s} {t.get('steps', '?'):>7}  "
              f"{d.get('description', '')}")
    return 0


def _train_prior(args) -> int:
    from pathlib import Path

    import torch

    from inverse.datasets import DEVICE_GENERATORS, cached_dataset
    from priors.training import train_prior

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps < 1 or args.batch_size < 1:
        raise ValueError("--steps and --batch-size must be at least 1")
    if args.max_minutes is not None and not (args.max_minutes > 0 and args.max_minutes < float("inf")):
        raise ValueError(f"--max-minutes must be a positive number, got {args.max_minutes}")
    out = Path(args.out)
    cache = (out.with_name(out.name + "-work") / "dataset.safetensors" if args.data_cache is None
             else None if args.data_cache.lower() == "none" else Path(args.data_cache))
    data, norm, desc, gen_time = cached_dataset(args.dataset, args.num_examples, args.size, args.seed, cache,
                                               device=args.data_device)
    card = {"name": args.name or args.out.rstrip("/").split("/")[-1],
            "data": {"dataset": args.dataset, "description": desc, "num_examples": args.num_examples,
                     "size": args.size, "seed": args.seed, "generation_time_s": gen_time,
                     "generation_device": args.data_device if args.dataset in DEVICE_GENERATORS else "cpu"},
            "units": norm.units, "dims": ["channel", "y", "x"]}
    out = train_prior(data, args.out, kind=args.kind, steps=args.steps, batch_size=args.batch_size,
                      widths=tuple(args.widths), layers_per_block=args.layers_per_block, lr=args.lr, seed=args.seed,
                      normalisation=norm, card=card, resume=args.resume, checkpoint_every=args.checkpoint_every,
                      devices=args.devices, num_nodes=args.num_nodes, strategy=args.strategy,
                      accelerator=args.accelerator, overwrite=args.overwrite or args.resume, progress=not args.quiet,
                      max_minutes=args.max_minutes)
    print(f"prior written to {out}")
    return 0


def _demo(args) -> int:
    from inverse.demo import run_demo
    from samplers import get_sampler

    get_sampler(args.sampler)  # an unknown name fails here, before any work
    if not args.toy:
        from inverse.demo import run_ct_demo

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
        if args.command == "train-prior":
            return _train_prior(args)
        if args.command == "priors":
            return _priors(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "reconstruct":
            return _reconstruct(args)
        if args.command == "train-surrogate":
            return __import__("inverse.surrogate_cli", fromlist=["run"]).run(args)
        if args.command == "reconstruct-batch":
            return __import__("inverse.batch_cli", fromlist=["run"]).run(args)
        if args.command == "calibrate":
            from inverse.calibration import cli as calibration_cli

            return calibration_cli.run(args)
    except KeyboardInterrupt:
        print("inverse: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError) as e:
        print(f"inverse {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a sampler's numerical failure (SamplerError names the step): one line, exit 2
        errors = sys.modules.get("samplers.errors")
        if errors is None or not isinstance(e, errors.SamplerError):
            raise
        print(f"inverse {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. 'inverse reconstruct ... | head': the reader went away
        sys.stderr.close()
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
