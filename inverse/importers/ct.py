"""CT sinograms: ``.npy`` arrays or TIFF stacks -> ``ct`` (parallel beam) / ``ct-fanbeam`` measurements.

A sinogram is ``(angles, detectors)``: one row per projection angle, line integrals ``-log(I / I_0)``.
A 3-D array or a multi-page TIFF is a stack of sinograms (one per slice): ``--slice K`` picks one
(default: the middle). ``--angles`` gives the projection angles in degrees as ``START:STOP:STEP``
(``STOP`` excluded), a comma list, or a text / ``.npy`` file; by default they are the model's own.

Geometry:

- ``parallel`` (problem ``ct``, :class:`forward_models.tomography.ParallelBeamCT`): angles uniform in
  [0, 180), ``N_d = ceil(sqrt(2) W)`` detector bins whose spacing is the pixel size; the image size ``W``
  follows from the number of detectors (91 -> 64). Other angle sets or detector counts are refused
  with the geometry the model needs (resample the sinogram first).
- ``fan`` (problem ``ct-fanbeam``, when this version has it): the geometry comes from the problem's
  options (``-o`` source / detector distances, detector count and spacing); the sinogram's shape and
  angles are checked against the operator built from them.

An image size no shipped prior takes is refused, naming the sizes available (``--any-size`` accepts it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from inverse.errors import UserError
from inverse.importers.readers import pick_slice, read_npy, read_tiff
from inverse.importers.settings import ImportSettings, settle_options

__all__ = ["MAX_ANGLES", "import_sinogram", "parse_angles"]

#: most projection angles a range may give (a typo in STEP must not become an allocation error)
MAX_ANGLES = 1_000_000


def parse_angles(spec: str | None) -> np.ndarray | None:
    """Angles in degrees from ``START:STOP:STEP``, ``a,b,c`` or a file (``.npy`` or whitespace / comma text)."""
    if spec is None:
        return None
    try:
        if ":" in spec:
            start, stop, step = (float(v) for v in spec.split(":"))
            if not step > 0 or not stop > start:
                raise ValueError
            n = (stop - start) / step
            if not n <= MAX_ANGLES:  # also inf and nan: bounded before anything is allocated
                raise UserError(f"--angles {spec!r}: {n:.3g} angles; at most {MAX_ANGLES} are accepted")
            return start + step * np.arange(int(round(n)))
        if "," in spec or _is_number(spec):
            return np.array([float(v) for v in spec.split(",")])
    except UserError:
        raise
    except ValueError:
        raise UserError(f"--angles {spec!r}: expected START:STOP:STEP (degrees, STOP excluded), a comma list or "
                        "a file") from None
    path = Path(spec)
    if path.suffix.lower() == ".npy":
        a = read_npy(path)
    else:
        if not path.is_file():
            raise UserError(f"--angles {spec!r}: not a range, a list or an existing file")
        try:
            a = np.array([float(v) for v in path.read_text().replace(",", " ").split()])
        except (ValueError, UnicodeDecodeError):
            raise UserError(f"--angles file {path}: not a list of numbers") from None
    return np.asarray(a, dtype=np.float64).reshape(-1)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _sinogram(path: Path, fmt: str, s: ImportSettings) -> tuple[np.ndarray, str]:
    a = read_tiff(path) if fmt == "tiff" else read_npy(path)
    if np.iscomplexobj(a):
        raise UserError(f"{path}: a sinogram must be real, got a complex array")
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    a, note = pick_slice(a, s.slice, a.ndim == 3, path, "sinogram")
    if a.ndim != 2 or min(a.shape) < 1:
        raise UserError(f"{path}: a sinogram must be (angles, detectors) or a stack of them, got shape {a.shape}")
    return np.asarray(a, dtype=np.float64), note


def _parallel_size(num_detectors: int, path: Path) -> int:
    W = max(1, int(math.floor(num_detectors / math.sqrt(2))))
    for w in (W - 1, W, W + 1):
        if w >= 1 and int(math.ceil(math.sqrt(2) * w)) == num_detectors:
            return w
    raise UserError(f"{path}: {num_detectors} detector bins match no parallel-beam image size: the model uses "
                    f"ceil(sqrt(2) W) bins of one pixel (91 for W = 64); resample the detector axis")


def import_sinogram(problem: str, path: Path, fmt: str, s: ImportSettings):
    """Measurements of ``ct`` / ``ct-fanbeam`` from a sinogram file (module docstring)."""
    from inverse.coordinates import model_angles_deg
    from inverse.importers.resize import check_prior_size
    from inverse.measurements import from_arrays
    from inverse.problems import build_forward_model

    y, note = _sinogram(path, fmt, s)
    A, Nd = y.shape
    angles = parse_angles(s.angles)
    if angles is not None and len(angles) != A:
        raise UserError(f"{path}: {len(angles)} angles given for a sinogram of {A} rows")
    options = dict(s.options)
    if problem == "ct":
        W = _parallel_size(Nd, path)
        if s.size is not None and int(s.size) != W:
            raise UserError(f"{path}: --size {s.size} needs {math.ceil(math.sqrt(2) * int(s.size))} detector bins, "
                            f"the sinogram has {Nd}")
        options = settle_options(options, {"size": W, "angles": A}, path)
    else:
        options = settle_options(options, {"angles": A}, path)
    fm = build_forward_model(problem, options)
    if tuple(fm.output_shape[-2:]) != (A, Nd):
        raise UserError(f"{path}: a sinogram of {A} angles x {Nd} detectors, but the {problem} geometry of the options "
                        f"gives {fm.output_shape[-2]} x {fm.output_shape[-1]}")
    want = model_angles_deg(fm)
    if angles is not None and want is not None and not np.allclose(angles, want, rtol=0, atol=1e-6):
        raise UserError(f"{path}: the angles ({angles[0]:g}, {angles[1] if A > 1 else angles[0]:g}, ... degrees) are "
                        f"not the model's {A} angles ({want[0]:g}, {want[1] if A > 1 else want[0]:g}, ... degrees); "
                        "resample the sinogram onto them")
    check_prior_size(problem, tuple(fm.input_shape), s.any_size,
                     "resample the sinogram's detector axis to the bins of that size")
    prov = {"source_file": str(path), "importer": f"inverse.importers.ct ({fmt})", "command_line": s.command_line,
            "preprocessing": note or None}
    return from_arrays(problem, y, options, noise_std=s.noise_std, provenance=prov)
