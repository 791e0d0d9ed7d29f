"""``inverse plot``: figures of a result file: an image posterior, or a calibration's summary, trace and pair plots.

    inverse plot posterior.nc --out figures/
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``plot`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    pl = subparsers.add_parser(
        "plot", help="figures of a result file: posterior images, or calibration summary / trace / pair plots")
    pl.add_argument("file", help="a NetCDF written by 'inverse reconstruct', 'inverse calibrate' or 'inverse demo'")
    pl.add_argument("--out", default=None,
                    help="output directory for the PNG files (default: beside FILE), or the .png file itself "
                         "for an image posterior")
    pl.add_argument("--overwrite", action="store_true", help="replace existing figures")
    return pl


def _plot_calibration(path, out, png_out, overwrite: bool) -> int:
    from inverse.calibration.diagnostics import format_summary
    from inverse.calibration.io import read_inference_data
    from inverse.calibration.plots import plot_pair, plot_trace
    from inverse.errors import UserError

    if png_out is not None:
        raise UserError(f"--out {png_out}: a calibration result gives two figures (trace, pair); "
                        "--out names their directory")
    idata = read_inference_data(path)
    print(format_summary(idata))
    out.mkdir(parents=True, exist_ok=True)  # only once the file has been read
    t = plot_trace(idata, out / f"{path.stem}-trace.png", overwrite=overwrite)
    p = plot_pair(idata, out / f"{path.stem}-pair.png", overwrite=overwrite)
    print(f"trace plot: {t}\npair plot:  {p}")
    return 0


def run(args) -> int:
    """Draw the figures of ``args.file``; prints their paths (and a calibration's summary)."""
    import warnings
    from pathlib import Path

    from samplers.atomic import check_output_path
    from samplers.netcdf import check_input_file

    path = check_input_file(args.file, "result file")  # a directory, a FIFO or a device: one line, nothing opened
    if args.out is not None and not args.out.strip():
        check_output_path(args.out)  # raises "empty output path"
    out = Path(args.out) if args.out else path.parent
    png_out = None  # --out fig.png names the figure itself (image posteriors; one figure)
    if out.suffix.lower() == ".png":
        png_out, out = out, out.parent
    from inverse.validation import check_path_names

    check_path_names(png_out or out, "--out")  # names the file system takes, before any stat or drawing
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    import h5py

    from samplers.netcdf import check_input_file, probe_hdf5

    check_input_file(path, "posterior file")
    if h5py.is_hdf5(path):
        probe_hdf5(path, "posterior file")  # a file that hangs the HDF5 library is refused before it is opened
    try:  # the top-level groups, read with h5py: a half-opened h5netcdf file would print its finaliser's errors
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with h5py.File(path, "r") as f:
                groups = {k for k, v in f.items() if isinstance(v, h5py.Group)}
    except Exception:  # noqa: BLE001 - unreadable here: open_posterior below says why in one line
        groups = set()
    if "posterior" in groups:  # ArviZ InferenceData from 'inverse calibrate'
        return _plot_calibration(path, out, png_out, args.overwrite)
    from inverse.errors import UserError
    from inverse.figures import plot_image_posterior, save_figure
    from samplers import open_posterior

    post = open_posterior(path)
    if post.samples.ndim < 3:
        raise UserError(f"{path} holds vector samples of shape {tuple(post.samples.shape[1:])}: "
                        "'inverse plot' draws image posteriors (use Posterior.mean() / quantile() in Python)")
    png = png_out or out / f"{path.stem}.png"
    if out.is_dir():
        check_output_path(png, args.overwrite)  # before drawing
    out.mkdir(parents=True, exist_ok=True)
    save_figure(plot_image_posterior(post), png, overwrite=args.overwrite)
    print(f"figure: {png}")
    return 0
