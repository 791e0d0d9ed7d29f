"""Training data sets for the shipped priors, built from our seeded ground-truth generators.

Each entry gives model-space tensors ``(N, 1, H, W)`` (values of order one, as EDM's
``sigma_data = 0.5`` assumes) and the :class:`priors.Normalisation` back to physical units:

| name | generator | physical -> model |
|---|---|---|
| ``phantoms`` | random ellipse phantoms in [0, 1] | ``x = 2 p - 1`` |
| ``gaussian-field`` | Matern Gaussian random field (alpha 2, tau 3) | ``x = u / (2 sd)`` |
| ``ns-vorticity`` | Navier-Stokes vorticity after 5 time units (InverseBench) | ``x = w / 10`` |
| ``darcy-perm`` | two-phase permeability a in {3, 12} (FNO) | ``x = (a - 7.5) / 4.5`` |
| ``seismic-velocity`` | OpenFWI-like velocity models, four families mixed | ``x = (v - 3000) / 1500`` |
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from forward_models.names import unknown_name_message
from inverse.errors import UserError
from priors.normalisation import Normalisation

__all__ = ["DATASETS", "cached_dataset", "make_dataset"]


def _phantoms(n, size, seed):
    from forward_models.generators.phantoms import random_ellipses

    return random_ellipses(n, size, seed=seed).float()


def _gaussian_field(n, size, seed):
    from forward_models.generators.grf import gaussian_random_field

    return gaussian_random_field(n, size, alpha=2.0, tau=3.0, seed=seed, periodic=True)


def _ns(n, size, seed, device=None):
    from forward_models.generators.vorticity import navier_stokes_snapshots

    on_gpu = device is not None and torch.device(device).type != "cpu"
    return navier_stokes_snapshots(n, size, seed=seed, device=device, batch_size=1024 if on_gpu else 64)


def _darcy(n, size, seed):
    from forward_models.generators.grf import two_phase_permeability

    return two_phase_permeability(n, size, seed=seed)


def _velocity(n, size, seed):
    from forward_models.generators.velocity import velocity_models

    fams = ["flat", "curved", "flat-fault", "curved-fault"]
    parts = [velocity_models(n // 4 + (i < n % 4), fam, (size, size), seed=seed * 10 + i) for i, fam in enumerate(fams)]
    x = torch.cat(parts)
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))]


def _gaussian_field_norm(size):
    from forward_models.generators.grf import matern_spectrum

    sd = float(matern_spectrum(size, alpha=2.0, tau=3.0).sum()) ** 0.5
    return Normalisation(2 * sd, 0.0, "")


#: name -> (generator(n, size, seed) in physical units, normalisation factory(size), description)
DATASETS = {
    "phantoms": (_phantoms, lambda size: Normalisation(0.5, 0.5, "attenuation (a.u.)"),
                 "random ellipse phantoms (CT / MRI)"),
    "gaussian-field": (_gaussian_field, _gaussian_field_norm, "periodic Matern Gaussian random field (alpha 2, tau 3)"),
    "ns-vorticity": (_ns, lambda size: Normalisation(10.0, 0.0, "1/s"),
                     "Navier-Stokes vorticity, Re 200, after 5 time units"),
    "darcy-perm": (_darcy, lambda size: Normalisation(4.5, 7.5, "permeability (a.u.)"),
                   "two-phase permeability 3 / 12 (FNO)"),
    "seismic-velocity": (_velocity, lambda size: Normalisation(1500.0, 3000.0, "m/s"), "OpenFWI-like velocity models"),
}


#: data sets whose generator can run on an accelerator (``device=``); the others always use the CPU
DEVICE_GENERATORS = ("ns-vorticity",)


def make_dataset(name: str, n: int, size: int, seed: int = 0, device=None):
    """``(model_space_tensor, normalisation, description)`` for the data set ``name`` (on the CPU).

    ``device`` runs the generator there where it can (:data:`DEVICE_GENERATORS`: the Navier-Stokes
    solver on a GPU); the random draws are made on the CPU either way, so the examples are the same
    fields up to floating-point rounding (the flow is chaotic, so individual snapshots may differ
    visibly after 5 time units on another device; their distribution does not).
    """
    if name not in DATASETS:
        raise UserError(unknown_name_message("data set", name, DATASETS))
    if int(n) < 1 or int(size) < 8:
        raise UserError(f"need at least 1 example of size >= 8, got n={n}, size={size}")
    gen, norm_fn, desc = DATASETS[name]
    norm = norm_fn(int(size))
    on_device = {"device": device} if name in DEVICE_GENERATORS else {}
    phys = gen(int(n), int(size), int(seed), **on_device).float()
    return norm.from_physical(phys), norm, desc


def cached_dataset(name: str, n: int, size: int, seed: int = 0, cache=None, device=None):
    """:func:`make_dataset` with an on-disk cache: ``(model_space_tensor, normalisation, description, gen_time_s)``.

    ``gen_time_s`` is the time the generation took, also when the data come from the cache.

    ``cache`` is a ``.safetensors`` file (or ``None``: no cache). If it exists and its metadata names the
    same ``(name, n, size, seed)``, the tensor is read back instead of regenerated (the Navier-Stokes
    data are expensive to generate on a CPU; a training run resumed in chunks regenerates them
    otherwise); a cache made for other arguments is an error naming both. The file is written
    atomically, so an interrupted generation leaves no half-written cache. ``device`` goes to
    :func:`make_dataset`.
    """
    import time

    from safetensors import safe_open
    from safetensors.torch import load_file, save

    from samplers.atomic import write_bytes_atomic

    key = {"dataset": str(name), "num_examples": int(n), "size": int(size), "seed": int(seed)}
    if cache is not None and Path(cache).is_file():
        with safe_open(str(cache), framework="pt") as f:
            meta = f.metadata() or {}
        held = json.loads(meta.get("key", "{}"))
        if held != key:
            raise UserError(f"data cache {cache} holds {held}, not {key}: delete it or choose another path")
        _, norm_fn, desc = DATASETS[name]
        return load_file(str(cache))["data"], norm_fn(int(size)), desc, float(meta.get("generation_time_s", "nan"))
    t0 = time.time()
    data, norm, desc = make_dataset(name, n, size, seed, device=device)
    gen_time = time.time() - t0
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(cache, save({"data": data.contiguous()},  # one plain write: a full disk is one line
                                       metadata={"key": json.dumps(key), "generation_time_s": repr(gen_time)}),
                           overwrite=True)
    return data, norm, desc, gen_time
