"""Cartesian MRI k-space: fastMRI HDF5, ``.npy`` and ``.mat`` -> ``mri`` / ``mri-multicoil`` measurements.

Layout (fastMRI, Zbontar et al., arXiv:1811.08839): ``kspace`` is complex, ``slices x coils x ky x kx``
(multi-coil) or ``slices x ky x kx`` (single-coil), centred (DC at ``(ky, kx) = (H // 2, W // 2)``),
on the orthonormal DFT, phase encoding along the last axis (the undersampled columns), as
:mod:`forward_models.mri`. ``.npy`` / ``.mat`` arrays follow the same order; a 3-D array is a stack
of slices for ``mri`` and the coils of one slice for ``mri-multicoil``.

Steps:

1. slice ``--slice K`` (default: the middle one);
2. mask: ``--mask FILE`` (``.npy``, ``(kx,)`` columns or ``(ky, kx)``), else the file's ``mask`` dataset
   (fastMRI), else inferred: a column is unsampled when it is exactly zero in every row and coil;
3. size: k-space other than ``size x size`` (``--size``, default the problem's 64, the ``phantoms-64``
   prior) is cropped centrally, an image-domain sinc resampling at the same field of view
   (:func:`inverse.importers.resize.crop_kspace`);
4. coil maps (multi-coil): ``--coil-maps FILE`` (``.npy`` complex ``(C, H, W)``), else estimated from the
   autocalibration region (:func:`inverse.importers.coil_maps.estimate_coil_maps`);
5. noise: ``--noise-std``, else the k-space corners (:mod:`inverse.importers.noise`).

Entries outside the mask are kept as recorded (zeros in scanner data); they do not enter the
likelihood's dependence on the image.

Radial k-space (``mri-radial``, ``mri-radial-multicoil``): the same files with ``spokes x samples`` in
place of ``ky x kx``. The trajectory is not read from the file: the samples must follow the problem's own
(``-o trajectory=golden|uniform``, ``--size``; spokes and samples per spoke are taken from the array's
shape), and the shape is checked against the operator built from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inverse.errors import UserError
from inverse.importers.readers import pick_slice, read_hdf5, read_mat, read_npy
from inverse.importers.settings import ImportSettings, settle_options

__all__ = ["import_kspace", "import_radial"]


def _read(path: Path, fmt: str, s: ImportSettings) -> tuple[np.ndarray, np.ndarray | None]:
    if fmt == "hdf5":
        k, extra = read_hdf5(path, s.variable, ("kspace",), ("mask",))
        return k, extra.get("mask")
    if fmt == "mat":
        return read_mat(path, s.variable, ("kspace",)), None
    return read_npy(path), None


def _one_slice(problem: str, k: np.ndarray, s: ImportSettings, path: Path) -> tuple[np.ndarray, str]:
    """``(coils, ky, kx)`` complex of the chosen slice, and a note for the provenance."""
    multi = problem.endswith("-multicoil")
    if not np.iscomplexobj(k):
        raise UserError(f"{path}: k-space must be complex, got a real array ({k.dtype}) of shape {k.shape}")
    stack_dims = {(False, 2): 0, (False, 3): 1, (False, 4): 1, (True, 3): 0, (True, 4): 1}
    if (multi, k.ndim) not in stack_dims:
        want = "(slices, coils, ky, kx) or (coils, ky, kx)" if multi else "(slices, ky, kx) or (ky, kx)"
        raise UserError(f"{path}: k-space of shape {k.shape} for problem {problem!r}: expected {want}")
    k, note = pick_slice(k, s.slice, bool(stack_dims[(multi, k.ndim)]), path, "slice")
    if k.ndim == 2:
        k = k[None]
    if not multi and k.shape[0] != 1:
        raise UserError(f"{path}: {k.shape[0]}-coil k-space: use --problem {problem}-multicoil")
    return np.ascontiguousarray(k, dtype=np.complex128), note


def _mask(k: np.ndarray, file_mask, s: ImportSettings, path: Path) -> tuple[np.ndarray, str]:
    H, W = k.shape[-2:]
    if s.mask is not None:
        m, how = read_npy(s.mask), f"mask from {Path(s.mask).name}"
    elif file_mask is not None:
        m, how = file_mask, "mask from the file's 'mask' dataset"
    else:
        cols = np.any(k != 0, axis=(0, 1))
        m, how = cols, f"mask inferred from zero columns ({int(cols.sum())} of {W} sampled)"
    m = np.asarray(m).astype(np.float64)
    if m.ndim == 1:
        m = np.broadcast_to(m[None], (H, m.shape[0]))
    if m.shape != (H, W):
        raise UserError(f"{path}: the mask has shape {m.shape}, the k-space {(H, W)}")
    return np.ascontiguousarray(m), how


def import_kspace(problem: str, path: Path, fmt: str, s: ImportSettings):
    """Measurements of ``mri`` / ``mri-multicoil`` from a k-space file (module docstring)."""
    from inverse.importers.coil_maps import estimate_coil_maps
    from inverse.importers.resize import check_prior_size, crop_kspace
    from inverse.measurements import from_arrays
    from inverse.problems import get_problem, problem_options

    size = int(s.size if s.size is not None else s.options.get("size", get_problem(problem).defaults["size"]))
    size = problem_options(problem, **{**s.options, "size": size})["size"]  # range and memory checked up front
    check_prior_size(problem, (1, size, size), s.any_size, "choose --size (k-space is cropped to it)")
    k, file_mask = _read(path, fmt, s)
    k, note = _one_slice(problem, k, s, path)
    mask, how = _mask(k, file_mask, s, path)
    notes = [n for n in (note, how) if n]
    noise_std = s.noise_std
    H, W = k.shape[-2:]
    if (H, W) != (size, size):
        k, mask, scale = crop_kspace(k, mask, size)
        notes.append(f"k-space cropped centrally from {H}x{W} to {size}x{size} (sinc resampling at the same field "
                     f"of view, data scaled by {scale:.6g})")
        noise_std = None if noise_std is None else noise_std * scale
    if not mask.any():
        raise UserError(f"{path}: no k-space column is sampled" + (" after the crop" if (H, W) != (size,) * 2 else ""))
    geometry = {}
    if problem == "mri-multicoil":
        if s.coil_maps is not None:
            maps = read_npy(s.coil_maps)
            if maps.shape != k.shape or not np.iscomplexobj(maps):
                raise UserError(f"{s.coil_maps}: coil maps must be complex of shape {k.shape}, got {maps.dtype} "
                                f"{maps.shape}")
            notes.append(f"coil maps from {Path(s.coil_maps).name}")
        else:
            maps = estimate_coil_maps(k, mask)
            notes.append("coil maps estimated from the autocalibration region (low-resolution sum of squares)")
        geometry["coil_maps"] = maps
        y = k
    else:
        y = k[0]
    cols = mask.astype(bool).all(axis=0)
    options = {**s.options, "acceleration": float(mask.shape[1] / max(int(cols.sum()), 1))}
    prov = {"source_file": str(path), "importer": f"inverse.importers.mri ({fmt})", "command_line": s.command_line,
            "preprocessing": "; ".join(notes)}
    return from_arrays(problem, y, options, noise_std=noise_std, mask=mask, geometry=geometry, provenance=prov)


def import_radial(problem: str, path: Path, fmt: str, s: ImportSettings):
    """Measurements of ``mri-radial`` / ``mri-radial-multicoil`` from a radial k-space file (module docstring)."""
    from inverse.importers.resize import check_prior_size
    from inverse.measurements import from_arrays
    from inverse.problems import get_problem

    k, _ = _read(path, fmt, s)
    k, note = _one_slice(problem, k, s, path)
    spokes, samples = k.shape[-2:]
    options = settle_options(s.options, {"spokes": spokes, "samples": samples}, path)
    if s.size is not None:
        options["size"] = int(s.size)
    size = int(options.get("size", get_problem(problem).defaults["size"]))
    check_prior_size(problem, (1, size, size), s.any_size, "choose --size")
    prov = {"source_file": str(path), "importer": f"inverse.importers.mri ({fmt}, radial)",
            "command_line": s.command_line, "preprocessing": note or None}
    y = k if problem.endswith("-multicoil") else k[0]
    return from_arrays(problem, y, options, noise_std=s.noise_std, provenance=prov)
