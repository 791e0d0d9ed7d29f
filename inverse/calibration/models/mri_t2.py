"""Mono-exponential MRI T2 relaxation: the signal of a multi-echo spin-echo sequence.

For a voxel with one water compartment, the echo amplitude at echo time ``TE`` is

    S(TE) = S0 exp(-TE / T2),

with ``S0`` the proton-density-weighted signal (arbitrary units) and ``T2`` the transverse
relaxation time (ms). Observations are the magnitudes at a train of echo times, here with additive
Gaussian noise (adequate at SNR above ~5, where the Rician bias is negligible; Gudbjartsson and
Patz 1995). Reference: Haacke et al., "Magnetic Resonance Imaging: Physical Principles and Sequence
Design" (1999), ch. 8; typical brain T2: white matter ~70-80 ms, grey matter ~90-100 ms at 1.5-3 T.

The same model is written twice: :class:`T2Relaxation` in JAX (a native NumPyro model) and
:class:`T2RelaxationTorch`, a torch :class:`forward_models.ForwardModel` on the parameter vector
``(S0, T2)``, calibrated through the torch bridge (tests and the ESS/s benchmark compare them).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import torch

from forward_models.base import ForwardModel
from inverse.calibration.model import CalibrationModel
from inverse.errors import UserError

__all__ = ["T2Relaxation", "T2RelaxationTorch", "DEFAULT_ECHO_TIMES"]

#: 16 echoes, 10 ms apart (a typical multi-echo spin-echo train), in ms
DEFAULT_ECHO_TIMES = tuple(float(10 * k) for k in range(1, 17))


def _echo_times(echo_times) -> np.ndarray:
    te = np.asarray(echo_times, dtype=np.float64).reshape(-1)
    if te.size < 2 or not np.isfinite(te).all() or (te < 0).any():
        raise UserError(f"echo_times must be at least two finite non-negative times (ms), got {echo_times!r}")
    return te


class T2Relaxation(CalibrationModel):
    """``(S0, T2) -> S0 exp(-TE_k / T2)`` at the echo times ``TE_k`` (ms); JAX.

    Parameters: ``S0`` (signal at TE = 0, arbitrary units), ``T2`` (ms). Default priors:
    ``S0 ~ LogNormal(0, 0.5)``, ``T2 ~ LogNormal(log 80, 0.5)`` (median 80 ms, 95% in 30-210 ms).
    Default truth: S0 = 1, T2 = 80 ms; noise ``sigma_scale`` = 0.02 (SNR 50 at TE = 0).

    Example::

        from inverse.calibration import calibrate
        from inverse.calibration.models import T2Relaxation
        m = T2Relaxation()
        y = m.simulate(m.default_truth(), sigma=0.02, seed=0)
        idata = calibrate(m, y, sigma=0.02, num_chains=2, num_warmup=300, num_samples=300)
    """

    name = "mri-t2"
    parameters = ("S0", "T2")
    obs_dims = ("echo_time",)
    sigma_scale = 0.02
    coord_config = {"echo_time": "echo_times"}

    def __init__(self, echo_times=DEFAULT_ECHO_TIMES):
        self.echo_times = _echo_times(echo_times)

    def predict(self, theta):
        """``S0 exp(-TE / T2)`` for every echo time."""
        te = jnp.asarray(self.echo_times)
        return theta["S0"] * jnp.exp(-te / theta["T2"])

    def default_priors(self):
        """``S0 ~ LogNormal(0, 0.5)``, ``T2 ~ LogNormal(log 80 ms, 0.5)``."""
        return {"S0": dist.LogNormal(0.0, 0.5), "T2": dist.LogNormal(float(np.log(80.0)), 0.5)}

    def default_truth(self):
        """S0 = 1, T2 = 80 ms."""
        return {"S0": 1.0, "T2": 80.0}

    def coords(self):
        """Echo times (ms)."""
        return {"echo_time": self.echo_times}

    def units(self):
        """S0 arbitrary, T2 and echo times in ms."""
        return {"S0": "a.u.", "T2": "ms", "echo_time": "ms"}

    def config(self):
        """Echo times."""
        return {"echo_times": self.echo_times.tolist()}

    def torch_model(self) -> T2RelaxationTorch:
        """The same model as a torch forward model (for the bridge)."""
        return T2RelaxationTorch(self.echo_times)


class T2RelaxationTorch(ForwardModel):
    """Torch version of :class:`T2Relaxation`: input ``(B, 2)`` = ``(S0, T2 [ms])``, output ``(B, n_echoes)``.

    Example::

        import torch
        from inverse.calibration.models.mri_t2 import T2RelaxationTorch
        op = T2RelaxationTorch()
        op(torch.tensor([[1.0, 80.0]], dtype=torch.float64))     # (1, 16)
    """

    linear = False
    differentiable = True

    def __init__(self, echo_times=DEFAULT_ECHO_TIMES):
        super().__init__()
        te = _echo_times(echo_times)
        self.register_buffer("echo_times", torch.as_tensor(te, dtype=torch.float64))
        self.input_shape = (2,)
        self.output_shape = (len(te),)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        """``S0 exp(-TE / T2)`` per batch row."""
        s0, t2 = theta[:, :1], theta[:, 1:2]
        return s0 * torch.exp(-self.echo_times.to(theta.dtype)[None] / t2)

    def example_input(self, n, seed=0, dtype=torch.float64):
        """Seeded ``(S0, T2)`` around (1, 80 ms)."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.stack([torch.exp(0.3 * torch.randn(int(n), generator=g, dtype=dtype)),
                            80.0 * torch.exp(0.3 * torch.randn(int(n), generator=g, dtype=dtype))], 1)

    def config(self):
        """Echo times plus the contract fields."""
        return {**super().config(), "echo_times": self.echo_times.tolist()}
