"""``inverse import``: measured data in a foreign format -> the measurement NetCDF ``inverse reconstruct`` reads.

    inverse import --problem mri-multicoil file1000001.h5 --slice 17 --out y.nc
    inverse import --problem ct sinogram.tif --angles 0:180:6 --noise-std 0.01 --out y.nc
    inverse import --problem fwi shots.sgy --out y.nc
    inverse import --problem darcy readings.csv --out y.nc

Formats, geometry rules and noise estimation: :mod:`inverse.importers` and ``docs/import.md``.
"""

from __future__ import annotations

import argparse

from inverse.cli import parse_key_values

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``import`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    s = subparsers.add_parser("import", help="import measured data (k-space, sinograms, SEG-Y, sensor readings)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("input", help="the measured data file")
    s.add_argument("--problem", required=True,
                   help="mri, mri-multicoil (k-space); ct (sinogram); fwi, seismic-interp (SEG-Y); darcy, "
                        "navier-stokes (sensor readings)")
    s.add_argument("--format", default=None,
                   help="hdf5, npy, mat, tiff, segy, csv or netcdf (default: from the file's suffix)")
    s.add_argument("--out", required=True, help="output measurement file (.nc)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    s.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="problem option, repeatable (as for 'inverse simulate')")
    s.add_argument("--noise-std", type=float, default=None,
                   help="noise standard deviation (measurement units); default: estimated from the data")
    s.add_argument("--variable", default=None, help="array name in a .mat / HDF5 / NetCDF file")
    s.add_argument("--slice", type=int, default=None, help="slice of a k-space or sinogram stack (default: middle)")
    s.add_argument("--mask", default=None, help="MRI: sampling mask (.npy, (kx,) or (ky, kx)); default: inferred")
    s.add_argument("--coil-maps", default=None,
                   help="MRI multi-coil: complex coil maps (.npy, (coils, ky, kx)); default: estimated from the "
                        "autocalibration region")
    s.add_argument("--size", type=int, default=None, help="MRI: image size to crop k-space to (default: 64)")
    s.add_argument("--angles", default=None, help="CT: angles in degrees, START:STOP:STEP, a comma list or a file")
    s.add_argument("--geometry", default="parallel", choices=("parallel", "fan"), help="CT beam geometry")
    s.add_argument("--any-size", action="store_true", help="accept an image size no shipped prior takes")
    return s


def _flags(args) -> list[str]:
    """The parsed command line in canonical form (recorded as the file's provenance)."""
    out = [args.input, "--problem", args.problem]
    for name in ("format", "noise_std", "variable", "slice", "mask", "coil_maps", "size", "angles"):
        v = getattr(args, name)
        if v is not None:
            out += [f"--{name.replace('_', '-')}", repr(v) if isinstance(v, float) else str(v)]
    out += [f for o in args.option for f in ("-o", o)]
    if args.geometry != "parallel":
        out += ["--geometry", args.geometry]
    return out + (["--any-size"] if args.any_size else []) + ["--out", args.out]


def run(args) -> int:
    """Import, write the measurement file, print what was read and how the noise level was obtained."""
    import shlex
    from pathlib import Path

    from inverse.importers import import_file
    from samplers.atomic import OutputExistsError

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"{out} already exists (pass --overwrite to replace it)")
    command = shlex.join(["inverse", "import", *_flags(args)])
    m = import_file(args.problem, args.input, args.format, options=parse_key_values(args.option, "-o"),
                    noise_std=args.noise_std, variable=args.variable, slice=args.slice, mask=args.mask,
                    coil_maps=args.coil_maps, size=args.size, angles=args.angles, geometry=args.geometry,
                    any_size=args.any_size, command_line=command)
    if m.provenance.get("preprocessing"):
        print(f"read {args.input}: {m.provenance['preprocessing']}")
    how = m.provenance.get("noise_estimate", "given")
    if how != "given":
        print(f"noise sigma estimated from {how}")
    m.to_netcdf(out, overwrite=args.overwrite)
    print(f"measurements: {out}  ({m.problem}, y of shape {tuple(m.y.shape)}, noise sigma {m.noise.sigma:.4g})")
    return 0
