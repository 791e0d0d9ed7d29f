"""1-D heat equation with an unknown diffusivity and source amplitude: temperatures at sensors.

A rod ``0 <= x <= L`` with ends held at zero (Dirichlet), a known initial temperature and a uniform
heat source of unknown amplitude ``A``:

    du/dt = D d^2u/dx^2 + A,       u(0, t) = u(L, t) = 0,       u(x, 0) = sum_n b_n sin(k_n x),

``k_n = n pi / L``. In the sine basis every mode decouples (separation of variables; Carslaw and
Jaeger, "Conduction of Heat in Solids", 2nd ed. 1959, ch. 3), with ``lambda_n = D k_n^2`` and the
source coefficients ``s_n = (2 / L) int_0^L sin(k_n x) dx = 2 (1 - (-1)^n) / (n pi)``:

    u(x, t) = sum_{n=1}^{N} [ b_n exp(-lambda_n t) + A s_n (1 - exp(-lambda_n t)) / lambda_n ] sin(k_n x).

The solution is exact up to truncating the source series at ``N`` modes (terms fall as ``n^-3``;
N = 64 leaves a relative error below 1e-5). Observations: ``u(x_j, t_i)`` at sensor positions
``x_j`` and times ``t_i``, array ``(time, position)``.

Written in JAX (:class:`HeatEquation1D`) and in torch (:class:`HeatEquation1DTorch`, a
:class:`forward_models.ForwardModel` on ``(D, A)``) for the torch-bridge benchmark.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import torch

from forward_models.base import ForwardModel
from inverse.calibration.model import CalibrationModel
from inverse.errors import UserError

__all__ = ["HeatEquation1D", "HeatEquation1DTorch"]

_DEFAULTS = {"length": 0.1, "positions": (0.02, 0.04, 0.06, 0.08),
             "times": tuple(float(t) for t in np.linspace(2.0, 40.0, 12)),
             "initial_modes": (1.0, 0.0, 0.5), "num_modes": 64}


def _design(length, positions, times, initial_modes, num_modes):
    length = float(length)
    if not (math.isfinite(length) and length > 0):
        raise UserError(f"the rod length must be positive, got {length}")
    x = np.asarray(positions, dtype=np.float64).reshape(-1)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    b = np.asarray(initial_modes, dtype=np.float64).reshape(-1)
    if x.size < 1 or not np.isfinite(x).all() or (x <= 0).any() or (x >= length).any():
        raise UserError(f"sensor positions must lie strictly inside (0, {length}), got {positions!r}")
    if t.size < 1 or not np.isfinite(t).all() or (t <= 0).any():
        raise UserError(f"observation times must be positive, got {times!r}")
    if int(num_modes) != num_modes or num_modes < max(1, b.size):
        raise UserError(f"num_modes must be an integer >= {max(1, b.size)} (the initial modes), got {num_modes}")
    if not np.isfinite(b).all():
        raise UserError("initial_modes must be finite")
    n = np.arange(1, int(num_modes) + 1, dtype=np.float64)
    k = n * np.pi / length
    b_full = np.zeros(n.size)
    b_full[: b.size] = b
    s = 2.0 * (1.0 - (-1.0) ** n) / (n * np.pi)
    return length, x, t, b, k, b_full, s, np.sin(np.outer(x, k))  # sin(k_n x_j): (position, mode)


class HeatEquation1D(CalibrationModel):
    """Diffusivity ``D`` (m^2/s) and source amplitude ``A`` (K/s) -> temperatures ``(time, position)`` (K).

    Parameters
    ----------
    length : rod length L (m), default 0.1
    positions : sensor positions in (0, L) (m), default 0.02, 0.04, 0.06, 0.08
    times : observation times (s), default 12 times from 2 to 40 s
    initial_modes : sine coefficients ``b_1, b_2, ...`` of the initial temperature (K), default (1, 0, 0.5)
    num_modes : modes N of the series (default 64)

    Default priors: ``diffusivity ~ LogNormal(log 1e-4, 1)`` (metals to water span ~1e-7..1e-4),
    ``source ~ Normal(0, 0.1)``; truth D = 1e-4 m^2/s, A = 0.05 K/s; noise 0.01 K.

    Example::

        from inverse.calibration import calibrate
        from inverse.calibration.models import HeatEquation1D
        m = HeatEquation1D()
        y = m.simulate(m.default_truth(), sigma=0.01, seed=0)        # (12, 4)
        idata = calibrate(m, y, sigma=0.01, num_chains=2, num_warmup=300, num_samples=300)
    """

    name = "heat"
    parameters = ("diffusivity", "source")
    obs_dims = ("time", "position")
    sigma_scale = 0.01
    coord_config = {"time": "times", "position": "positions"}

    def __init__(self, length=_DEFAULTS["length"], positions=_DEFAULTS["positions"], times=_DEFAULTS["times"],
                 initial_modes=_DEFAULTS["initial_modes"], num_modes=_DEFAULTS["num_modes"]):
        (self.length, self.positions, self.times, self.initial_modes, self._k, self._b, self._s,
         self._sin) = _design(length, positions, times, initial_modes, num_modes)
        self.num_modes = int(num_modes)

    def predict(self, theta):
        """Series solution of the module docstring at every (time, position)."""
        lam = theta["diffusivity"] * jnp.asarray(self._k) ** 2  # (mode,)
        decay = jnp.exp(-jnp.asarray(self.times)[:, None] * lam[None])  # (time, mode)
        # (1 - e^{-lam t}) / lam written with expm1 so that a tiny lam keeps its precision
        growth = -jnp.expm1(-jnp.asarray(self.times)[:, None] * lam[None]) / lam[None]
        coef = jnp.asarray(self._b)[None] * decay + theta["source"] * jnp.asarray(self._s)[None] * growth
        return coef @ jnp.asarray(self._sin).T  # (time, position)

    def default_priors(self):
        """``diffusivity ~ LogNormal(log 1e-4, 1)``, ``source ~ Normal(0, 0.1)``."""
        return {"diffusivity": dist.LogNormal(float(np.log(1e-4)), 1.0), "source": dist.Normal(0.0, 0.1)}

    def default_truth(self):
        """D = 1e-4 m^2/s, A = 0.05 K/s."""
        return {"diffusivity": 1e-4, "source": 0.05}

    def coords(self):
        """Observation times (s) and sensor positions (m)."""
        return {"time": self.times, "position": self.positions}

    def units(self):
        """SI units."""
        return {"diffusivity": "m^2/s", "source": "K/s", "time": "s", "position": "m", "y": "K"}

    def config(self):
        """Constructor arguments."""
        return {"length": self.length, "positions": self.positions.tolist(), "times": self.times.tolist(),
                "initial_modes": self.initial_modes.tolist(), "num_modes": self.num_modes}

    def torch_model(self) -> HeatEquation1DTorch:
        """The same model in torch (for the bridge)."""
        return HeatEquation1DTorch(**self.config())


class HeatEquation1DTorch(ForwardModel):
    """Torch version of :class:`HeatEquation1D`: input ``(B, 2)`` = ``(D, A)``, output ``(B, time, position)``.

    Example::

        import torch
        from inverse.calibration.models.heat import HeatEquation1DTorch
        op = HeatEquation1DTorch()
        op(torch.tensor([[1e-4, 0.05]], dtype=torch.float64)).shape     # (1, 12, 4)
    """

    linear = False
    differentiable = True

    def __init__(self, length=_DEFAULTS["length"], positions=_DEFAULTS["positions"], times=_DEFAULTS["times"],
                 initial_modes=_DEFAULTS["initial_modes"], num_modes=_DEFAULTS["num_modes"]):
        super().__init__()
        _, x, t, _, k, b, s, sin = _design(length, positions, times, initial_modes, num_modes)
        for name, v in (("k", k), ("b", b), ("s", s), ("sin", sin), ("times", t)):
            self.register_buffer(name, torch.as_tensor(v, dtype=torch.float64))
        self.input_shape = (2,)
        self.output_shape = (t.size, x.size)
        self._cfg = {"length": float(length), "positions": x.tolist(), "times": t.tolist(),
                     "initial_modes": np.asarray(initial_modes, dtype=np.float64).reshape(-1).tolist(),
                     "num_modes": int(num_modes)}

    def forward(self, theta):
        """Series solution per batch row."""
        d, a = theta[:, 0], theta[:, 1]
        lam = d[:, None] * self.k[None] ** 2  # (B, mode)
        lt = self.times[None, :, None] * lam[:, None, :]  # (B, time, mode)
        coef = self.b * torch.exp(-lt) + a[:, None, None] * self.s * (-torch.expm1(-lt)) / lam[:, None, :]
        return coef @ self.sin.T

    def example_input(self, n, seed=0, dtype=torch.float64):
        """Seeded ``(D, A)`` around (1e-4, 0.05)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.stack([1e-4 * torch.exp(0.3 * torch.randn(int(n), generator=g, dtype=dtype)),
                            0.05 + 0.02 * torch.randn(int(n), generator=g, dtype=dtype)], 1)

    def config(self):
        """Constructor arguments plus the contract fields."""
        return {**super().config(), **self._cfg}
