"""2-D incompressible Navier-Stokes in vorticity form: initial vorticity -> subsampled vorticity at time T.

Convention: InverseBench (Zheng et al., "InverseBench", ICLR 2025), *not* the FNO one (Li et al. 2021,
[0, 1]^2, nu = 1e-3, forcing 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))). On the periodic square
``[0, 2 pi]^2`` the vorticity ``w = dv/dx - du/dy`` of the velocity ``(u, v)`` obeys

    dw/dt + (u, v) . grad w = nu Lap w + f,      -Lap psi = w,      (u, v) = (d psi/dy, -d psi/dx),

with viscosity ``nu = 1 / Re`` (Re = 200) and Kolmogorov forcing ``f(x, y) = -4 cos(4 y)``
(the curl of the body force ``(sin 4y, 0)``). Quantities are non-dimensional: lengths in units of
``L / 2 pi``, time in the matching convective unit.

Discretisation: Fourier pseudo-spectral on an ``N x N`` grid ``x_i = 2 pi i / N`` (first spatial
axis), ``y_j = 2 pi j / N`` (second spatial axis), with 2/3-rule dealiasing of the advection term
(Orszag 1971: modes ``|k_x| > N/3`` or ``|k_y| > N/3`` removed from its inputs and its output).
Time stepping with a fixed step ``dt``: Heun's method for advection + forcing, Crank-Nicolson for
viscosity (the IMEX scheme of the PINO / InverseBench solver, second order), per step::

    n1 = A(w_hat)
    w~ = ((1 - dt nu |k|^2 / 2) w_hat + dt n1) / (1 + dt nu |k|^2 / 2)
    w_hat <- ((1 - dt nu |k|^2 / 2) w_hat + dt (n1 + A(w~)) / 2) / (1 + dt nu |k|^2 / 2)

where ``A(w_hat) = f_hat - D[div((u, v) w)]`` (``D`` the dealiasing mask; the divergence form of the
advection term, equal to ``(u, v) . grad w`` as the velocity is divergence-free). With a fixed step the
solver is a differentiable function of the initial vorticity, and plain autograd through it is the
exact discrete adjoint (InverseBench runs its solver under ``torch.no_grad``, which silently gives
zero gradients: here the solver never disables autograd).

Accuracy (measured, N = 64, T = 1, InverseBench-like spun-up inputs): dt = 1e-2 vs 2.5e-4 differs by
~0.6% (relative L2), the 64 grid vs a 128 grid by ~10%, and the 32 grid of :meth:`NavierStokes2D.coarse`
by ~40% (~15% for the smoother Gaussian-random-field inputs): at Re = 200 these flows are only
marginally resolved on 64^2. The PINO / InverseBench code dealiases only the factors of the
advection product, not the product itself; that also changes the result by ~14% on such inputs.
Stability: the explicit advection limits the Courant number ``max|u| dt / (2 pi / N)``: 0.44 for
InverseBench-like fields at N = 64, dt = 1e-2 (stable); the same fields on a 128 grid (0.88) or
fields ~6x stronger at N = 64 blow up, and the output is then NaN or Inf (reduce dt):
:func:`stable_time_step` keeps the Courant number of N = 64, dt = 1e-2 on finer grids.
"""

from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from forward_models.base import ForwardModel, check_batch
from forward_models.errors import ForwardModelError

__all__ = ["NavierStokes2D", "spectral_resample", "stable_time_step"]


def stable_time_step(resolution: int) -> float:
    """``1e-2 * min(1, 64 / resolution)``: the step of the 64 grid (Courant number ~0.44 for spun-up Re-200 fields,
    module docstring), scaled with the grid spacing on finer grids so that the Courant number stays the same."""
    return 1e-2 * min(1.0, 64.0 / int(resolution))

_FACTORS = (1, 2, 4, 8)


def spectral_resample(w: torch.Tensor, size: int) -> torch.Tensor:
    """Resample a periodic field ``(..., N, N)`` to ``(..., size, size)`` by Fourier truncation or zero-padding.

    The field is read as the trigonometric polynomial through its samples; modes with
    ``|k| >= min(N, size) / 2`` are dropped (the Nyquist modes, ambiguous on the smaller grid), so
    restriction is the L2 projection onto the coarse grid's modes and interpolation of a field that
    has no Nyquist content reproduces it exactly at the shared points.

    Example::

        import torch
        from forward_models.navier_stokes import spectral_resample
        w = torch.randn(2, 1, 64, 64)
        spectral_resample(w, 32).shape        # (2, 1, 32, 32)
    """
    n = w.shape[-1]
    if w.shape[-2] != n:
        raise ForwardModelError(f"spectral_resample needs a square field, got shape {tuple(w.shape)}")
    if size == n:
        return w
    w_hat = torch.fft.rfft2(w, norm="forward")
    return torch.fft.irfft2(_resize_spectrum(w_hat, n, size), s=(size, size), norm="forward")


def _resize_spectrum(w_hat: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """rfft2 coefficients (norm='forward') of an n-grid field -> those of the size-grid field, |k| < min/2 kept."""
    m = min(n, size) // 2
    out = w_hat.new_zeros(*w_hat.shape[:-2], size, size // 2 + 1)
    out[..., :m, :m] = w_hat[..., :m, :m]
    if m > 1:
        out[..., size - m + 1:, :m] = w_hat[..., n - m + 1:, :m]
    return out


class NavierStokes2D(ForwardModel):
    """Initial vorticity ``w0`` -> vorticity ``w(T)`` at every ``factor``-th grid point (InverseBench).

    ``F(w0) = w(T)[x_{f i}, y_{f j}]`` with ``w`` solving the forced vorticity equation of the module
    docstring on ``[0, 2 pi]^2`` (periodic), ``nu = viscosity``, ``f = -forcing_amplitude cos(forcing_wavenumber y)``.

    Shapes: input ``(B, 1, N, N)`` (``w0[b, 0, i, j]`` at ``(x_i, y_j) = (2 pi i / N, 2 pi j / N)``),
    output ``(B, 1, N / factor, N / factor)``, entry ``[b, 0, i, j]`` = ``w(T)`` at ``(x_{factor i}, y_{factor j})``.
    Units: non-dimensional (domain length 2 pi; InverseBench data lie roughly in (-10, 10), the spun-up
    snapshots of :func:`forward_models.generators.vorticity.navier_stokes_snapshots` have std ~4.8, |w| < ~20).

    Parameters
    ----------
    resolution : N, the grid of the input (and of the observation locations); even, >= 8
    factor : subsampling of the observed final vorticity, one of 1, 2, 4, 8 (InverseBench: 2, 4, 8)
    T : final time (> 0)
    dt : time step; the solver takes ``ceil(T / dt)`` equal steps of ``T / ceil(T / dt) <= dt``
        (at N = 64, T = 1, dt = 1e-2 differs from dt = 2.5e-4 by 0.08% (relative L2) on random-field
        inputs and 0.6% on spun-up ones)
    viscosity : nu = 1 / Re (> 0); InverseBench: 1 / 200
    forcing_amplitude, forcing_wavenumber : the Kolmogorov forcing ``-A cos(k y)``; A = 0 for unforced flow
    solver_resolution : grid the equations are solved on (divides N, default N). Smaller grids give the
        cheaper levels of :meth:`coarse`: the input is spectrally truncated onto it and the final field
        observed at the same physical points (directly when they are solver grid points, else by
        spectral interpolation)
    checkpoint_every : recompute the forward pass in chunks of this many steps during backward
        (``torch.utils.checkpoint``) instead of storing every step (~0.4 MB per step per sample at
        N = 64 in float32, 0.8 MB in float64); None stores all. Outputs and gradients are identical.

    Example::

        import torch
        from forward_models.navier_stokes import NavierStokes2D
        op = NavierStokes2D(32, factor=2, T=0.1)
        w0 = op.example_input(2, seed=0, dtype=torch.float64)     # (2, 1, 32, 32)
        y = op(w0)                                                # (2, 1, 16, 16)
        w0.requires_grad_(True)
        (g,) = torch.autograd.grad(op(w0).square().sum(), w0)    # exact discrete adjoint
        coarse = op.coarse()                                      # 16 x 16, step 2 dt, same shapes
    """

    linear = False
    differentiable = True

    def __init__(self, resolution: int = 64, *, factor: int = 2, T: float = 1.0, dt: float = 1e-2,
                 viscosity: float = 1.0 / 200.0, forcing_amplitude: float = 4.0, forcing_wavenumber: int = 4,
                 solver_resolution: int | None = None, checkpoint_every: int | None = None, device=None):
        super().__init__()
        n = int(resolution)
        if n != resolution or n < 8 or n % 2:
            raise ForwardModelError(f"NavierStokes2D: resolution must be an even integer >= 8, got {resolution}")
        if factor not in _FACTORS or n % factor:
            raise ForwardModelError(f"NavierStokes2D: factor must be one of {_FACTORS} and divide the resolution {n}, "
                                    f"got {factor}")
        m = n if solver_resolution is None else solver_resolution
        if int(m) != m or m < 8 or m % 2 or n % m:
            raise ForwardModelError(f"NavierStokes2D: solver_resolution must be an even integer >= 8 dividing the "
                                    f"resolution {n}, got {solver_resolution}")
        m = int(m)
        if not (math.isfinite(T) and T > 0):
            raise ForwardModelError(f"NavierStokes2D: the final time T must be positive and finite, got {T}")
        if not (math.isfinite(dt) and dt > 0):
            raise ForwardModelError(f"NavierStokes2D: the time step dt must be positive and finite, got {dt}")
        if not (math.isfinite(viscosity) and viscosity > 0):
            raise ForwardModelError("NavierStokes2D: the viscosity (1 / Reynolds number) must be positive, got "
                                    f"{viscosity}")
        if not math.isfinite(forcing_amplitude):
            raise ForwardModelError(f"NavierStokes2D: forcing_amplitude must be finite, got {forcing_amplitude}")
        if int(forcing_wavenumber) != forcing_wavenumber or forcing_wavenumber < 0:
            raise ForwardModelError(f"NavierStokes2D: forcing_wavenumber must be a non-negative integer, "
                                    f"got {forcing_wavenumber}")
        if forcing_amplitude != 0 and forcing_wavenumber > m / 3:
            raise ForwardModelError(f"NavierStokes2D: forcing_wavenumber {forcing_wavenumber} is not resolved on a "
                                    f"{m} x {m} solver grid (needs wavenumber <= {m} / 3 after dealiasing)")
        if checkpoint_every is not None and (int(checkpoint_every) != checkpoint_every or checkpoint_every < 1):
            raise ForwardModelError(f"NavierStokes2D: checkpoint_every must be a positive integer or None, "
                                    f"got {checkpoint_every}")
        self.resolution, self.factor, self.solver_resolution = n, int(factor), m
        self.T, self.dt, self.viscosity = float(T), float(dt), float(viscosity)
        self.forcing_amplitude, self.forcing_wavenumber = float(forcing_amplitude), int(forcing_wavenumber)
        self.checkpoint_every = None if checkpoint_every is None else int(checkpoint_every)
        self.n_steps = self._steps(self.T)
        self.input_shape = (1, n, n)
        self.output_shape = (1, n // self.factor, n // self.factor)
        self._register_spectral_buffers(m)
        if device is not None:
            self.to(device)

    # ----------------------------------------------------------------------------------- set-up
    def _register_spectral_buffers(self, m: int) -> None:
        kx = torch.fft.fftfreq(m, 1.0 / m, dtype=torch.float64)[:, None].expand(m, m // 2 + 1)
        ky = torch.fft.rfftfreq(m, 1.0 / m, dtype=torch.float64)[None, :].expand(m, m // 2 + 1)
        k2 = kx**2 + ky**2
        dealias = ((kx.abs() <= m / 3) & (ky.abs() <= m / 3)).to(torch.float64)
        dealias[0, 0] = 0.0  # advection has zero mean (div-free velocity)
        inv_k2 = torch.where(k2 > 0, 1.0 / k2.clamp_min(1.0), torch.zeros_like(k2))
        # forcing -A cos(k y) in rfft2 coefficients (norm='forward'): -A/2 at (0, k) (its mirror (0, -k) implied)
        # real coefficients, kept as a real buffer: Module.to(float32) would drop the imaginary part of a
        # complex buffer (with a warning), so no complex buffers here
        forcing_hat = torch.zeros(m, m // 2 + 1, dtype=torch.float64)
        kf = self.forcing_wavenumber
        forcing_hat[0, kf] = -self.forcing_amplitude * (1.0 if kf == 0 else 0.5)
        self.register_buffer("kx", kx.contiguous(), persistent=False)
        self.register_buffer("ky", ky.contiguous(), persistent=False)
        self.register_buffer("k2", k2, persistent=False)
        self.register_buffer("dealias", dealias, persistent=False)
        self.register_buffer("inv_k2", inv_k2, persistent=False)
        self.register_buffer("forcing_hat", forcing_hat, persistent=False)

    def _steps(self, T: float) -> int:
        return max(1, math.ceil(T / self.dt - 1e-9))

    # ----------------------------------------------------------------------------------- solver
    def _advection_forcing(self, w_hat: torch.Tensor, c: dict) -> torch.Tensor:
        """``f_hat - D[div((u, v) w)]_hat`` for rfft2 coefficients ``w_hat`` (B, m, m/2+1).

        Divergence form (equal to ``(u, v) . grad w`` for a divergence-free velocity): three inverse and
        two forward transforms, and the mean vorticity is conserved exactly.
        """
        m = self.solver_resolution
        wd = w_hat * c["dealias"]
        psi = w_hat * c["D/k2"]
        u = torch.fft.irfft2(c["iky"] * psi, s=(m, m), norm="forward")  # u = d psi / dy
        v = torch.fft.irfft2(c["-ikx"] * psi, s=(m, m), norm="forward")  # v = -d psi / dx
        w = torch.fft.irfft2(wd, s=(m, m), norm="forward")
        flux_x, flux_y = torch.fft.rfft2(u * w, norm="forward"), torch.fft.rfft2(v * w, norm="forward")
        return c["forcing"] - (c["D ikx"] * flux_x + c["D iky"] * flux_y)

    def _constants(self, dtype: torch.dtype, dt: float) -> dict:
        real = torch.float64 if dtype == torch.float64 else torch.float32
        cplx = torch.complex128 if real == torch.float64 else torch.complex64
        half = 0.5 * dt * self.viscosity * self.k2
        ikx, iky = (1j * self.kx).to(cplx), (1j * self.ky).to(cplx)
        dealias = self.dealias.to(real)
        return {"dealias": dealias, "D/k2": (self.dealias * self.inv_k2).to(real), "iky": iky, "-ikx": -ikx,
                "D ikx": dealias * ikx, "D iky": dealias * iky, "forcing": self.forcing_hat.to(cplx),
                "decay": ((1 - half) / (1 + half)).to(real), "gain": (dt / (1 + half)).to(real),
                "half gain": (0.5 * dt / (1 + half)).to(real)}

    def _heun_cn_steps(self, w_hat: torch.Tensor, steps: int, c: dict) -> torch.Tensor:
        for _ in range(steps):
            decayed = c["decay"] * w_hat
            n1 = self._advection_forcing(w_hat, c)
            n2 = self._advection_forcing(decayed + c["gain"] * n1, c)
            w_hat = decayed + c["half gain"] * (n1 + n2)
        return w_hat

    def _evolve(self, w0: torch.Tensor, T: float) -> torch.Tensor:
        """rfft2 coefficients of ``w(T)`` on the solver grid from ``w0`` (B, 1, N, N)."""
        n, m = self.resolution, self.solver_resolution
        steps = self._steps(T)
        c = self._constants(w0.dtype, T / steps)
        w_hat = torch.fft.rfft2(w0[:, 0], norm="forward")
        if m != n:
            w_hat = _resize_spectrum(w_hat, n, m)
        chunk = self.checkpoint_every
        if chunk is None or chunk >= steps or not (torch.is_grad_enabled() and w0.requires_grad):
            return self._heun_cn_steps(w_hat, steps, c)
        done = 0
        while done < steps:
            k = min(chunk, steps - done)
            w_hat = checkpoint(self._heun_cn_steps, w_hat, k, c, use_reentrant=False)
            done += k
        return w_hat

    def solve(self, w0: torch.Tensor, T: float | None = None) -> torch.Tensor:
        """Final vorticity ``w(T)`` on the full input grid, ``(B, 1, N, N)`` -> ``(B, 1, N, N)``.

        ``T`` defaults to the model's final time; the step is ``T / ceil(T / dt)``. With a coarser
        ``solver_resolution`` the result is spectrally interpolated back to N. Differentiable.
        """
        check_batch(w0, self.input_shape, "initial vorticity")
        if not bool(torch.isfinite(w0).all()):
            raise ForwardModelError("NavierStokes2D.solve: the initial vorticity contains NaN or Inf")
        T = self.T if T is None else float(T)
        if not (math.isfinite(T) and T > 0):
            raise ForwardModelError(f"NavierStokes2D.solve: the final time T must be positive and finite, got {T}")
        w_hat = self._evolve(w0, T)
        n, m = self.resolution, self.solver_resolution
        if m != n:
            w_hat = _resize_spectrum(w_hat, m, n)
        return torch.fft.irfft2(w_hat, s=(n, n), norm="forward")[:, None]

    def forward(self, w0: torch.Tensor) -> torch.Tensor:
        """``w(T)`` at the observation points, ``(B, 1, N, N)`` -> ``(B, 1, N/factor, N/factor)``."""
        n, m, f = self.resolution, self.solver_resolution, self.factor
        w_hat = self._evolve(w0, self.T)
        r = n // m
        if f % r == 0:  # observation points lie on the solver grid
            w = torch.fft.irfft2(w_hat, s=(m, m), norm="forward")
            return w[:, None, :: f // r, :: f // r]
        w = torch.fft.irfft2(_resize_spectrum(w_hat, m, n), s=(n, n), norm="forward")
        return w[:, None, ::f, ::f]

    # ----------------------------------------------------------------------------------- contract
    def coarse(self, factor: int = 2, dt: float | None = None) -> NavierStokes2D:
        """The same map solved on a grid ``factor`` times coarser; same input and output shapes.

        The time step defaults to ``factor * dt`` (the same Courant number): at N = 64 -> 32 it halves
        the cost again at no loss, as the coarse level's error is the grid's (measured 14.78% vs 14.78%
        relative difference to the fine model with the fine and the doubled step).
        """
        if factor not in (2, 4) or self.solver_resolution % factor or self.solver_resolution // factor < 8:
            raise ForwardModelError(f"NavierStokes2D.coarse: factor must be 2 or 4 and leave a solver grid >= 8 "
                                    f"(solver grid {self.solver_resolution}), got {factor}")
        cfg = {k: v for k, v in self.config().items() if k in _CTOR_KEYS}
        cfg["solver_resolution"] = self.solver_resolution // factor
        cfg["dt"] = self.dt * factor if dt is None else dt
        return NavierStokes2D(**cfg, device=self.kx.device)

    def example_input(self, n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
        """Seeded InverseBench-like initial vorticities (Gaussian random fields), ``(n, 1, N, N)``."""
        from forward_models.generators.grf import initial_vorticity

        return initial_vorticity(int(n), self.resolution, seed=seed, dtype=dtype)

    def config(self) -> dict:
        """Constructor arguments plus the contract fields (JSON-serialisable)."""
        return {**super().config(), "class": "NavierStokes2D", "convention": "InverseBench",
                "resolution": self.resolution, "factor": self.factor, "T": self.T, "dt": self.dt,
                "n_steps": self.n_steps, "viscosity": self.viscosity, "forcing_amplitude": self.forcing_amplitude,
                "forcing_wavenumber": self.forcing_wavenumber, "solver_resolution": self.solver_resolution,
                "checkpoint_every": self.checkpoint_every}


_CTOR_KEYS = ("resolution", "factor", "T", "dt", "viscosity", "forcing_amplitude", "forcing_wavenumber",
              "solver_resolution", "checkpoint_every")


def _example(seed: int) -> NavierStokes2D:
    # 16 x 16, 5 steps: cheap, yet enough dynamics for the contract suite (seed only fixes inputs)
    return NavierStokes2D(16, factor=2, T=0.1, dt=0.02)


def _benchmark() -> NavierStokes2D:
    return NavierStokes2D(64, factor=2, T=1.0, dt=1e-2)


#: entries for forward_models.registry: name -> class, small example builder, documented-size builder
REGISTRY_ENTRIES = {"navier-stokes": {"cls": NavierStokes2D, "example": _example, "benchmark": _benchmark}}
