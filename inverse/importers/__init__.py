"""Importers: measured data in foreign formats -> the measurement NetCDF that ``inverse reconstruct`` reads.

Every importer ends in :func:`inverse.measurements.from_arrays`, so an imported file and a simulated one
are read by the same code (``inverse reconstruct``, ``reconstruct-batch``, ``plot``). What a file means
depends on the problem's *family*; which reader opens it depends on its *format*:

| family | problems | formats | module |
|---|---|---|---|
| ``kspace`` | ``mri``, ``mri-multicoil`` | ``hdf5`` (fastMRI), ``npy``, ``mat`` | :mod:`inverse.importers.mri` |
| ``radial-kspace`` | ``mri-radial``, ``mri-radial-multicoil`` | ``hdf5``, ``npy``, ``mat`` | same |
| ``sinogram`` | ``ct`` (parallel), ``ct-fanbeam`` (fan) | ``npy``, ``tiff`` | :mod:`inverse.importers.ct` |
| ``shot-gathers`` | ``fwi``, ``seismic-interp`` | ``segy`` | :mod:`inverse.importers.seismic` |
| ``sensors`` | ``darcy``, ``navier-stokes`` | ``csv``, ``netcdf`` | :mod:`inverse.importers.sensors` |

A new problem of an existing family needs one line in :data:`FAMILIES` (and, if it records geometry
arrays, one in :data:`inverse.importers.geometry.ARRAY_BUILDERS`).

Example::

    from inverse.importers import import_file
    m = import_file("mri-multicoil", "file1000001.h5", slice=17)     # fastMRI layout
    m.to_netcdf("y.nc")                                             # then: inverse reconstruct y.nc
"""

from __future__ import annotations

import importlib
from pathlib import Path

from inverse.errors import UserError
from inverse.importers.settings import ImportSettings

__all__ = ["FAMILIES", "FORMATS", "SUFFIXES", "ImportSettings", "import_file", "family_of", "format_of"]

#: problem -> family of its measured data
FAMILIES = {"mri": "kspace", "mri-multicoil": "kspace", "mri-radial": "radial-kspace",
            "mri-radial-multicoil": "radial-kspace", "ct": "sinogram", "ct-fanbeam": "sinogram",
            "fwi": "shot-gathers", "seismic-interp": "shot-gathers", "darcy": "sensors", "navier-stokes": "sensors"}

#: family -> (module:function, formats it reads)
FORMATS = {"kspace": ("mri:import_kspace", ("hdf5", "npy", "mat")),
           "radial-kspace": ("mri:import_radial", ("hdf5", "npy", "mat")),
           "sinogram": ("ct:import_sinogram", ("npy", "tiff")),
           "shot-gathers": ("seismic:import_segy", ("segy",)),
           "sensors": ("sensors:import_sensors", ("csv", "netcdf"))}

#: file suffix -> format
SUFFIXES = {".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".npy": "npy", ".mat": "mat", ".tif": "tiff",
            ".tiff": "tiff", ".sgy": "segy", ".segy": "segy", ".csv": "csv", ".nc": "netcdf", ".nc4": "netcdf"}


def family_of(problem: str) -> str:
    """The family of ``problem``'s measured data (one-line error for a problem without an importer)."""
    from inverse.problems import get_problem

    get_problem(problem)
    if problem not in FAMILIES:
        raise UserError(f"problem {problem!r} has no importer (importers exist for: {', '.join(FAMILIES)})")
    return FAMILIES[problem]


def format_of(path, fmt: str | None, family: str) -> str:
    """``fmt``, or the format of ``path``'s suffix; checked against what ``family`` reads."""
    formats = FORMATS[family][1]
    if fmt is None:
        fmt = SUFFIXES.get(Path(path).suffix.lower())
        if fmt is None:
            raise UserError(f"cannot tell the format of {Path(path).name} from its suffix: pass --format "
                            f"({', '.join(formats)})")
    if fmt not in formats:
        raise UserError(f"format {fmt!r} is not read for {family} data (formats: {', '.join(formats)})")
    return fmt


def _resolve_problem(problem: str, geometry: str) -> str:
    """``ct`` with ``--geometry fan`` is the fan-beam problem, when this version has it."""
    from inverse.problems import PROBLEMS

    if geometry not in ("parallel", "fan"):
        raise UserError(f"--geometry must be parallel or fan, got {geometry!r}")
    if geometry == "fan":
        if problem not in ("ct", "ct-fanbeam"):
            raise UserError(f"--geometry fan applies to CT, not to problem {problem!r}")
        if "ct-fanbeam" not in PROBLEMS:
            raise UserError("fan-beam CT needs the problem 'ct-fanbeam', which this version does not have")
        return "ct-fanbeam"
    return problem


def import_file(problem: str, path, fmt: str | None = None, **settings):
    """Read ``path`` as measured data of ``problem``: a :class:`~inverse.measurements.Measurements`.

    ``settings``: the fields of :class:`ImportSettings` (``options``, ``noise_std``, ``slice``, ``mask``,
    ``coil_maps``, ``size``, ``angles``, ``geometry``, ``variable``, ``any_size``, ``command_line``).
    """
    from inverse.importers.readers import require_file
    from inverse.problems import problem_options

    s = ImportSettings(**settings)
    problem = _resolve_problem(problem, s.geometry)
    family = family_of(problem)
    problem_options(problem, **s.options)  # names, types, finite values and upper bounds, before any reading
    path = require_file(path)
    fmt = format_of(path, fmt, family)
    target, formats = FORMATS[family]
    module, function = target.split(":")
    reader = getattr(importlib.import_module(f"inverse.importers.{module}"), function)
    return reader(problem, path, fmt, s)
