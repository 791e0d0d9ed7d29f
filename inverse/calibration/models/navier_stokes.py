"""Navier-Stokes viscosity and forcing amplitude from a vorticity snapshot, through the torch bridge.

The 2-D vorticity equation of :mod:`forward_models.navier_stokes` on the periodic square ``[0, 2 pi]^2``,

    dw/dt + (u, v) . grad w = nu Lap w - A cos(k y),

starts from a *known* initial vorticity ``w0``; the unknowns are the viscosity ``nu = 1 / Re`` and the
Kolmogorov forcing amplitude ``A``. The observation is ``w(T)`` on every ``factor``-th grid point.
The solver is our torch :class:`~forward_models.navier_stokes.NavierStokes2D` (pseudo-spectral,
Heun / Crank-Nicolson), made a function of ``(nu, A)`` per batch row: ``nu`` enters the
Crank-Nicolson factors ``(1 - dt nu |k|^2 / 2) / (1 + dt nu |k|^2 / 2)`` and ``A`` the forcing
coefficient, so autograd through the fixed-step solver gives the exact discrete gradient. Small
grids (24 x 24, a few tens of steps) keep NUTS feasible on a CPU.
"""

from __future__ import annotations

import math

import numpy as np
import numpyro.distributions as dist
import torch

from forward_models.base import ForwardModel
from forward_models.navier_stokes import NavierStokes2D
from inverse.calibration.bridge import TorchModel
from inverse.errors import UserError

__all__ = ["NavierStokesParameters", "NavierStokesCalibration"]


class NavierStokesParameters(ForwardModel):
    """``(nu, A)`` -> vorticity ``w(T)`` at every ``factor``-th point, for a fixed initial vorticity ``w0``.

    Input ``(B, 2)`` (viscosity, forcing amplitude), output ``(B, 1, N / factor, N / factor)``
    (entry ``[b, 0, i, j]`` at ``(x, y) = (2 pi factor i / N, 2 pi factor j / N)``).

    Parameters
    ----------
    initial_vorticity : array ``(N, N)`` (or ``(1, 1, N, N)``)
    factor, T, dt, forcing_wavenumber : as for :class:`~forward_models.navier_stokes.NavierStokes2D`

    Example::

        import torch
        from forward_models.generators.grf import initial_vorticity
        from inverse.calibration.models.navier_stokes import NavierStokesParameters
        w0 = initial_vorticity(1, 24, seed=0, dtype=torch.float64)
        op = NavierStokesParameters(w0, factor=2, T=0.5, dt=0.05)
        op(torch.tensor([[1 / 200, 4.0]], dtype=torch.float64)).shape      # (1, 1, 12, 12)
    """

    linear = False
    differentiable = True

    def __init__(self, initial_vorticity, *, factor: int = 2, T: float = 0.5, dt: float = 0.05,
                 forcing_wavenumber: int = 4):
        super().__init__()
        w0 = torch.as_tensor(np.asarray(initial_vorticity), dtype=torch.float64)
        if w0.ndim == 4 and w0.shape[:2] == (1, 1):
            w0 = w0[0, 0]
        if w0.ndim != 2 or w0.shape[0] != w0.shape[1]:
            raise UserError(f"the initial vorticity must be a square (N, N) array, got shape {tuple(w0.shape)}")
        if not bool(torch.isfinite(w0).all()):
            raise UserError("the initial vorticity contains NaN or Inf")
        n = w0.shape[0]
        # the solver supplies grid, wavenumbers and the advection term; (nu, A) are set per row in forward
        self.solver = NavierStokes2D(n, factor=factor, T=T, dt=dt, viscosity=1.0, forcing_amplitude=1.0,
                                     forcing_wavenumber=forcing_wavenumber)
        self.register_buffer("w0", w0)
        self.input_shape = (2,)
        self.output_shape = tuple(self.solver.output_shape)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        """Heun / Crank-Nicolson steps of the solver with per-row ``nu`` and ``A``."""
        s = self.solver
        nu, amp = theta[:, 0].to(torch.float64), theta[:, 1].to(torch.float64)
        steps = s.n_steps
        h = s.T / steps
        c = s._constants(torch.float64, h)  # unit viscosity and forcing; replaced per row below
        half = 0.5 * h * nu[:, None, None] * s.k2[None]
        c["decay"] = (1 - half) / (1 + half)
        c["gain"] = h / (1 + half)
        c["half gain"] = 0.5 * h / (1 + half)
        c["forcing"] = amp[:, None, None] * c["forcing"][None]
        w_hat = torch.fft.rfft2(self.w0, norm="forward")[None].expand(theta.shape[0], -1, -1)
        w_hat = s._heun_cn_steps(w_hat, steps, c)
        w = torch.fft.irfft2(w_hat, s=(s.resolution, s.resolution), norm="forward")
        return w[:, None, :: s.factor, :: s.factor].to(theta.dtype)

    def example_input(self, n, seed=0, dtype=torch.float64):
        """Seeded ``(nu, A)`` around (1/200, 4)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.stack([0.005 * torch.exp(0.2 * torch.randn(int(n), generator=g, dtype=dtype)),
                            4.0 + 0.5 * torch.randn(int(n), generator=g, dtype=dtype)], 1)

    def config(self):
        """Solver settings plus the contract fields (the initial vorticity is an array, stored apart)."""
        s = self.solver
        return {**super().config(), "resolution": s.resolution, "factor": s.factor, "T": s.T, "dt": s.dt,
                "forcing_wavenumber": s.forcing_wavenumber}


class NavierStokesCalibration(TorchModel):
    """Calibrate ``viscosity`` and ``forcing_amplitude`` of 2-D Navier-Stokes from ``w(T)`` (torch bridge).

    Parameters
    ----------
    resolution : grid N (default 24)
    factor : observe every factor-th point (default 2: a 12 x 12 snapshot)
    T, dt : horizon and time step (default 0.5 and 0.05: ten Heun / Crank-Nicolson steps)
    forcing_wavenumber : k of the forcing ``-A cos(k y)`` (default 4)
    initial_vorticity : the known ``w0`` (N, N); default a Gaussian random field (PINO style) drawn with ``seed``

    Default priors: ``viscosity ~ LogNormal(log 0.005, 0.5)``, ``forcing_amplitude ~ Uniform(0, 10)``;
    truth nu = 1/200 (Re = 200, InverseBench), A = 4; noise 0.05 (the snapshot's std is ~1.8).

    Example::

        from inverse.calibration import calibrate
        from inverse.calibration.models import NavierStokesCalibration
        m = NavierStokesCalibration()
        y = m.simulate(m.default_truth(), sigma=0.05, seed=0)
        idata = calibrate(m, y, sigma=0.05, num_chains=2, num_warmup=200, num_samples=200)
    """

    def __init__(self, resolution: int = 24, *, factor: int = 2, T: float = 0.5, dt: float = 0.05,
                 forcing_wavenumber: int = 4, initial_vorticity=None, seed: int = 0):
        from forward_models.generators.grf import initial_vorticity as grf

        if initial_vorticity is None:
            if int(resolution) != resolution or resolution < 8 or resolution % 2:
                raise UserError(f"resolution must be an even integer >= 8, got {resolution}")
            initial_vorticity = grf(1, int(resolution), seed=int(seed), dtype=torch.float64)[0, 0]
        op = NavierStokesParameters(initial_vorticity, factor=factor, T=T, dt=dt,
                                    forcing_wavenumber=forcing_wavenumber)
        n, f = op.solver.resolution, op.solver.factor
        grid = 2 * math.pi * np.arange(0, n, f) / n
        super().__init__(op, ("viscosity", "forcing_amplitude"), name="navier-stokes",
                         obs_dims=("channel", "obs_x", "obs_y"),
                         coords={"channel": np.array([0]), "obs_x": grid, "obs_y": grid},
                         priors={"viscosity": dist.LogNormal(float(np.log(0.005)), 0.5),
                                 "forcing_amplitude": dist.Uniform(0.0, 10.0)},
                         truth={"viscosity": 1.0 / 200.0, "forcing_amplitude": 4.0}, sigma_scale=0.05)

    def units(self):
        """Non-dimensional (domain 2 pi)."""
        return {"viscosity": "1 (= 1/Re)", "forcing_amplitude": "1", "obs_x": "1", "obs_y": "1"}

    def constant_data(self):
        """The known initial vorticity ``w0`` on the full grid."""
        s = self.forward_model.solver
        grid = 2 * math.pi * np.arange(s.resolution) / s.resolution
        return {"initial_vorticity": (("grid_x", "grid_y"), self.forward_model.w0.cpu().numpy()),
                "grid_x": (("grid_x",), grid), "grid_y": (("grid_y",), grid)}

    def config(self):
        """Constructor arguments (the initial vorticity is stored as an array)."""
        s = self.forward_model.solver
        return {"resolution": s.resolution, "factor": s.factor, "T": s.T, "dt": s.dt,
                "forcing_wavenumber": s.forcing_wavenumber}

    @classmethod
    def from_config(cls, config, arrays=None):
        """Rebuild from :meth:`config` and the stored initial vorticity."""
        arrays = dict(arrays or {})
        if "initial_vorticity" not in arrays:
            raise UserError("the navier-stokes data file lacks the variable 'initial_vorticity'")
        return cls(**config, initial_vorticity=arrays["initial_vorticity"])
