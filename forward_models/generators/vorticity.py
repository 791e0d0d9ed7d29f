"""Navier-Stokes vorticity snapshots (InverseBench-style ground truths and training data).

A Gaussian-random-field initial vorticity (:func:`forward_models.generators.grf.initial_vorticity`)
evolved by :class:`forward_models.navier_stokes.NavierStokes2D` (Kolmogorov forcing ``-4 cos 4y``,
Re = 200, ``[0, 2 pi]^2``) for a spin-up time, so that the snapshots lie on the forced flow's
attractor rather than being Gaussian. InverseBench spins up 5 time units; its values lie roughly
in (-10, 10) and are divided by 10 for training.
"""

from __future__ import annotations

import math

import torch

from forward_models.errors import ForwardModelError
from forward_models.generators.grf import initial_vorticity
from forward_models.navier_stokes import NavierStokes2D, stable_time_step

__all__ = ["navier_stokes_snapshots"]


def navier_stokes_snapshots(n: int, size: int = 64, *, seed: int = 0, t_spinup: float = 5.0, dt: float | None = None,
                            viscosity: float = 1.0 / 200.0, batch_size: int = 64,
                            dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """``n`` seeded vorticity fields ``w(t_spinup)`` from random initial vorticities -> ``(n, 1, size, size)``.

    ``w0 = initial_vorticity(n, size, seed=seed)``, then ``w(t_spinup) = NavierStokes2D(size).solve(w0, t_spinup)``
    (pseudo-spectral, 2/3 dealiasing, Heun / Crank-Nicolson, fixed step ``dt``, by default
    :func:`~forward_models.navier_stokes.stable_time_step` of the grid: 1e-2 up to 64^2), computed in float64
    without gradients in batches of ``batch_size``. Unnormalised: divide by 10 for InverseBench's
    training scale. ``device`` runs the solver there (e.g. ``"cuda"``, with a larger ``batch_size``);
    the initial fields are drawn on the CPU and the snapshots returned on the CPU.

    Example::

        from forward_models.generators.vorticity import navier_stokes_snapshots
        w = navier_stokes_snapshots(4, 32, seed=0, t_spinup=1.0)     # (4, 1, 32, 32)
    """
    n, batch_size = int(n), int(batch_size)
    if n < 1:
        raise ForwardModelError(f"navier_stokes_snapshots: the number of snapshots must be at least 1, got {n}")
    if batch_size < 1:
        raise ForwardModelError(f"navier_stokes_snapshots: batch_size must be at least 1, got {batch_size}")
    if not (math.isfinite(t_spinup) and t_spinup > 0):
        raise ForwardModelError(f"navier_stokes_snapshots: t_spinup must be positive and finite, got {t_spinup}")
    dt = stable_time_step(size) if dt is None else dt
    solver = NavierStokes2D(size, factor=1, T=t_spinup, dt=dt, viscosity=viscosity, device=device)
    w0 = initial_vorticity(n, size, seed=seed, dtype=torch.float64)
    with torch.no_grad():  # data generation only: the forward model itself never disables autograd
        out = [solver.solve(w0[i : i + batch_size].to(solver.kx.device)).cpu() for i in range(0, n, batch_size)]
    return torch.cat(out).to(dtype)
