"""MCMC in the latent space of a flow or diffusion prior, through its deterministic probability-flow map.

A diffusion / flow prior defines a deterministic map ``x = T_K(z)``, ``z ~ N(0, I)``: the probability-flow
ODE integrated with ``K`` Heun steps from ``sigma_max z`` to ``sigma = 0`` (:func:`priors.ode.latent_to_sample`;
Song et al. 2021, Karras et al. 2022). Pulling the likelihood back through it gives a posterior on ``z`` with
a standard Gaussian prior,

    pi(dz) ∝ exp(-Phi(z)) N(0, I)(dz),     Phi(z) = -log p(y | G(T_K(z))),

which pCN and delayed acceptance sample directly (pCN on ``z ~ N(0, I)``: ``m_0 = 0``, ``C_0 = I``). The
law of ``T_K(z)`` is the ODE's push-forward, which approximates the prior as ``K`` grows; a coarse level can
use fewer ODE steps (``Phi_c(z)`` with ``K_c < K``), a coarser forward model, or both, and the
delayed-acceptance chain stays exact for the fine level's ``Phi``.
"""

from __future__ import annotations

import math

import torch

from forward_models.problem import InverseProblem
from priors import StandardGaussian, latent_to_sample
from priors.base import Prior
from samplers.errors import SamplerConfigError
from samplers.mcmc.potential import Potential
from samplers.validation import int_at_least, positive_float

__all__ = ["LatentMap", "latent_potential", "latent_measure"]


class LatentMap:
    """``z (B, d) -> prior.to_physical(T_K(z)) (B, *prior.shape)`` by the probability-flow ODE with ``num_steps`` steps.

    ``nfe_per_sample`` network evaluations per mapped latent (Heun: two per ODE step, one for the last);
    ``nfe`` counts them (summed over the batch) since construction.

    Example::

        import torch
        from priors import GaussianPrior
        from samplers.mcmc import LatentMap
        T = LatentMap(GaussianPrior(torch.zeros(2), std=1.0), num_steps=8)
        x = T(torch.randn(5, 2, dtype=torch.float64))        # (5, 2)
    """

    def __init__(self, prior: Prior, num_steps: int = 18, rho: float = 7.0):
        if not isinstance(prior, Prior):
            raise TypeError(f"LatentMap: prior must be a Prior, got {type(prior).__name__}")
        self.prior = prior
        self.num_steps = int_at_least(num_steps, "LatentMap: num_steps", 2)
        self.rho = positive_float(rho, "LatentMap: rho")
        self.dim = math.prod(prior.shape)
        self.nfe_per_sample = 2 * self.num_steps - 1
        self.nfe = 0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Samples in physical units for latents ``z (B, d)``."""
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise SamplerConfigError(f"LatentMap: expected latents of shape (B, {self.dim}), got {tuple(z.shape)}")
        zz = z.reshape(z.shape[0], *self.prior.shape).to(device=self.prior.device, dtype=self.prior.dtype)
        with torch.no_grad():
            x, nfe = latent_to_sample(self.prior, zz, self.num_steps, self.rho)
            self.nfe += nfe * z.shape[0]
            return self.prior.to_physical(x)


def latent_measure(prior: Prior) -> StandardGaussian:
    """The latent prior ``N(0, I_d)``, ``d = prod(prior.shape)``."""
    return StandardGaussian(math.prod(prior.shape))


def latent_potential(problem: InverseProblem, prior: Prior, num_steps: int = 18, *,
                     name: str | None = None) -> Potential:
    """``Phi(z) = -log p(y | G(T_K(z)))`` for a flow / diffusion prior and ``K = num_steps`` ODE steps.

    Example (a coarse and a fine level for delayed acceptance)::

        # coarse = latent_potential(problem_coarse_grid, prior, num_steps=6, name="coarse")
        # fine = latent_potential(problem, prior, num_steps=18, name="fine")
        # kernel = MLDA([coarse, fine], latent_measure(prior), subchain_lengths=5)
    """
    if tuple(prior.shape) != tuple(problem.forward_model.input_shape):
        raise SamplerConfigError(f"the prior's samples have shape {tuple(prior.shape)} but the forward model expects "
                                 f"{tuple(problem.forward_model.input_shape)}")
    return Potential(problem, LatentMap(prior, num_steps), name=name or f"latent-{num_steps}-steps",
                     dtype=prior.dtype)
