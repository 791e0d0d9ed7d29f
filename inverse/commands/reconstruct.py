"""``inverse reconstruct``: sample the posterior of a measurement file (:func:`inverse.reconstruct`).

    inverse reconstruct y.nc --sampler dps --num-samples 8 --out posterior.nc --figure posterior.png

Writes the posterior NetCDF (and the figure) atomically and prints the closing summary
(:func:`inverse.reconstruction.format_summary`). With ``--checkpoint FILE`` the sampler state is saved
every ``--checkpoint-every`` steps and on Ctrl-C; ``--resume`` continues from it. If the posterior cannot
be written when sampling has finished (a full disk, a file that appeared meanwhile), it is saved as
``STEM-rescued-PID.nc`` beside the checkpoint or in the temporary directory (``$TMPDIR``), and the
one-line error names that file.
"""

from __future__ import annotations

import argparse
import sys

from inverse.cli import parse_key_values

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``reconstruct`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    r = subparsers.add_parser("reconstruct", help="sample the posterior of a measurement file")
    r.add_argument("measurements", help="a file written by 'inverse simulate'")
    r.add_argument("--prior", default=None,
                   help="shipped prior name, directory, or gaussian[:STD] (default: the problem's prior)")
    r.add_argument("--sampler", default=None, help="sampler name: dps, mcg, daps, pnp-dm, diffpir, ddrm, tds, "
                   "mcgdiff, afes, enkg, eki, pcn, da, mlda, exact-gaussian (default: dps; mcg for seismic-interp)")
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
    r.add_argument("--no-fallback", action="store_true",
                   help="without --prior, keep the problem's shipped prior even when it does not explain the data "
                        "(by default a generic prior is then tried and the better-fitting posterior kept)")
    r.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="save the sampler state to FILE (safetensors) every --checkpoint-every steps and on Ctrl-C")
    r.add_argument("--checkpoint-every", type=int, default=10, metavar="K",
                   help="steps between checkpoints (default 10)")
    r.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint FILE (same measurements, prior, sampler settings and seed)")
    return r


def _check_flags(args):
    """Refuse, before any work, outputs that would be replaced without ``--overwrite``, and flag combinations
    that only the command line has (the library checks the measurement file, device, sample count, sampler
    settings and an existing checkpoint to resume); returns the checkpoint path or None."""
    from pathlib import Path

    from inverse.errors import UserError
    from inverse.validation import check_output_path
    from samplers.atomic import OutputExistsError

    for flag, p in (("--out", args.out), ("--figure", args.figure)):
        if p is not None:  # empty, too long, a directory, no directory, existing, read-only
            check_output_path(p, flag, overwrite=args.overwrite)
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if args.resume and ckpt is None:
        raise UserError("--resume needs --checkpoint FILE")
    if ckpt is not None:
        check_output_path(ckpt, "--checkpoint", overwrite=True)  # a name the file system takes, in a writable dir
        if args.checkpoint_every < 1:
            raise UserError(f"--checkpoint-every must be at least 1, got {args.checkpoint_every}")
        if ckpt.exists() and not (args.resume or args.overwrite):
            raise OutputExistsError(f"checkpoint {ckpt} already exists (pass --resume to continue that run, "
                                    "or --overwrite to start afresh)")
        if ckpt.is_dir() or not (ckpt.parent if str(ckpt.parent) else Path(".")).is_dir():
            raise FileNotFoundError(f"--checkpoint {ckpt}: not a file in an existing directory")
    from inverse.validation import check_device, check_distinct_paths, check_seed, check_threads

    for flag, value in (("--sampler", args.sampler), ("--prior", args.prior), ("--checkpoint", args.checkpoint),
                        ("--figure", args.figure), ("--device", args.device)):
        if value is not None and not value.strip():  # an empty value is not the default
            raise UserError(f"{flag}: the value is empty")
    check_distinct_paths([("measurements", args.measurements), ("--out", args.out), ("--figure", args.figure),
                          ("--checkpoint", args.checkpoint)])
    check_seed(args.seed)
    check_threads(args.threads)
    check_device(args.device)
    return ckpt


def _write_posterior(post, out, overwrite: bool, ckpt) -> None:
    """Write the finished posterior to ``out``; if that fails (a full disk, a file that appeared meanwhile),
    save it beside the checkpoint or in the temporary directory and name that file in the one-line error."""
    import os
    import tempfile
    from pathlib import Path

    from samplers.atomic import OutputExistsError, OutputWriteError

    try:
        post.to_netcdf(out, overwrite=overwrite)
        return
    except OSError as e:
        error = e
    rescue = None
    for d in ([ckpt.parent] if ckpt is not None else []) + [Path(tempfile.gettempdir())]:
        try:
            rescue = post.to_netcdf(d / f"{out.stem}-rescued-{os.getpid()}{out.suffix or '.nc'}")
            break
        except OSError:
            continue
    note = (f"the posterior is saved in {rescue}: move it to {out} when the problem is fixed" if rescue else
            "the posterior could not be saved anywhere else either")
    if isinstance(error, OutputExistsError):
        raise OutputExistsError(f"{error}; {note}") from error
    raise OutputWriteError(error.errno, f"{error.strerror or error}; {note}", str(out)) from error


def run(args) -> int:
    """Reconstruct, write the posterior (and figure), print the summary."""
    from pathlib import Path

    import torch

    from inverse.figures import plot_image_posterior, save_figure
    from inverse.reconstruction import format_summary, reconstruct

    ckpt = _check_flags(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        post = reconstruct(args.measurements, args.prior, args.sampler, num_samples=args.num_samples, seed=args.seed,
                           steps=args.steps, sampler_options=parse_key_values(args.sampler_option, "-s"),
                           device=args.device, progress=not args.quiet, checkpoint=ckpt,
                           checkpoint_every=args.checkpoint_every, resume=args.resume,
                           fallback=not args.no_fallback)
    except KeyboardInterrupt:
        if ckpt is not None and ckpt.is_file():  # one line, instead of main's "interrupted"
            print(f"inverse reconstruct: interrupted; the state is saved in {ckpt}: rerun with --resume",
                  file=sys.stderr)
            return 130
        raise
    out = Path(args.out)
    _write_posterior(post, out, args.overwrite, ckpt)
    print(format_summary(post))  # ends with one 'warning:' line per failed check (inverse.diagnostics)
    print(f"posterior: {out}")
    if args.figure:
        save_figure(plot_image_posterior(post), args.figure, overwrite=args.overwrite)
        print(f"figure:    {args.figure}")
    return 0
