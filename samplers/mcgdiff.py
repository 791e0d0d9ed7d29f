"""MCGdiff: exact SMC for linear-Gaussian problems (Cardoso, Janati, Le Corff and Moulines, ICLR 2024),
written in sigma space.

Chosen over FPS-SMC (Dou and Song 2024) because in sigma space its construction becomes exact and
simple: in the singular basis ``A = U diag(s) V^T`` (``z = V^T x``, ``y_bar = U^T y``) a measurement
``y_bar_i = s_i z0_i + sigma_y e_i`` reads ``y_bar_i / s_i = z0_i + tau_i e_i`` with
``tau_i = sigma_y / s_i``: *exactly* the i-th coordinate of the diffused sample ``x_tau = x0 + tau eps``
at noise level ``tau_i``. Because the VE noise is isotropic, the coordinates' noising processes are
independent, so

    p(x0 | y) = law of the reverse diffusion conditioned on  s_i z_{tau_i, i} = y_bar_i  for every i,

a filtering problem on the reverse chain with one exact observation per coordinate, at its own
level. (The paper's VP form matches ``sigma_y^2 abar_t ~ (1 - abar_t) s_i^2``; in sigma space the
matching level is simply ``tau_i``.) We insert every ``tau_i < sigma_max`` into the EDM grid, so a
run has ``num_steps`` plus up to ``rank(A)`` levels. The twist of coordinate ``i`` at level ``s``:

    s > tau_i :  N(y_bar_i; s_i z_i, s_i^2 s^2 - sigma_y^2)   (y_bar_i / s_i is x_s's coordinate
                                                              noised back down to tau_i: the paper's
                                                              potential with the forward kernel)
    s = tau_i :  z_i pinned to y_bar_i / s_i                  (the exact observation)
    s < tau_i :  none (the coordinate follows the prior kernel; unobserved directions always do)

Coordinates with ``tau_i >= sigma_max`` (singular values below ``sigma_y / sigma_max``) are observed
before the chain starts: the initial draw conditions ``N(0, sigma_max^2)`` on
``y_bar_i = s_i x_i + N(0, sigma_y^2 - s_i^2 sigma_max^2)`` (forward noising from ``sigma_max`` to
``tau_i``). Each step samples the ancestral kernel tilted by the next twist exactly and weights by
the ratio of its normaliser to the current twist (:class:`samplers.smc.LinearTwistSMC`); the
evidence estimate is of ``p(y)`` itself (the twists are normalised densities of ``y_bar``).
The paper resamples multinomially at every step; we resample systematically, by default at every
step whose weights are not uniform (``resample_threshold = 1``; on the mixture benchmark at d = 8,
256 particles, this measured no worse than the ESS < N/2 rule and better at dy = 1). No network gradients.

The SVD comes from the operator's ``svd()`` when it has one (``MatrixOperator``) and the prior maps
to physical units by the identity; otherwise from ``torch.linalg.svd`` of the dense matrix of
``x -> F(to_physical(x))`` (inputs up to :data:`samplers.smc.MAX_DENSE_DIM`).
"""

from __future__ import annotations

import torch

from samplers.schedules import karras_sigmas
from samplers.smc import LinearTwistSMC

__all__ = ["MCGdiff"]


class MCGdiff(LinearTwistSMC):
    """Monte Carlo guided diffusion: exact-observation SMC in the operator's singular basis.

    Needs a linear forward model with Gaussian noise (refuses others with a ValueError).

    Parameters
    ----------
    num_steps : EDM levels; one level per observed singular direction is inserted (module docstring)
    resample_threshold : resample when ESS < threshold * N (default 1: every step, as the paper)
    rho : EDM schedule exponent

    Example::

        import torch
        from inverse.harness import gmm_case
        from samplers import MCGdiff
        case = gmm_case(8, 2, seed=0)
        post = MCGdiff(num_steps=50).sample(case.problem, case.prior, 256, seed=0)
        post.mean(), post.diagnostics["log_evidence"], case.log_evidence
    """

    def __init__(self, num_steps: int = 100, resample_threshold: float = 1.0, rho: float = 7.0):
        super().__init__(num_steps, resample_threshold, rho)

    def setup(self, problem, prior):
        """Singular basis and the matching levels ``tau_i = sigma_y / s_i``."""
        model = super().setup(problem, prior)
        model["tau"] = model["lg"].sigma_y / model["lg"].s.to(torch.float64)
        return model

    def sigmas(self, prior, model) -> list[float]:
        """EDM levels with every ``tau_i < sigma_max`` inserted; records each coordinate's level index."""
        grid = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho)[:-1].tolist()
        top = grid[0]
        taus = [float(t) for t in model["tau"]]
        levels = sorted(set(grid) | {t for t in taus if t < top}, reverse=True) + [0.0]
        model["obs_level"] = torch.tensor([levels.index(t) if t < top else -1 for t in taus],
                                          device=model["lg"].s.device)
        return levels

    def twist(self, model, k, sigmas):
        """Variance ``s_i^2 s_k^2 - sigma_y^2`` while ``k`` precedes the coordinate's level, 0 at it;
        at ``k = 0`` coordinates observed before the start get ``sigma_y^2 - s_i^2 s_0^2``."""
        lg, level = model["lg"], model["obs_level"]
        s2 = lg.s**2 * sigmas[k] ** 2
        var = s2 - lg.sigma_y**2
        var = torch.where(level == k, torch.zeros_like(var), var)
        active = level >= k
        if k == 0:
            var = torch.where(level < 0, lg.sigma_y**2 - s2, var)
            active = torch.ones_like(active)
        return torch.where(active, var.clamp_min(0.0), torch.ones_like(var)), active

    def pending_twist(self, model, k, sigmas):
        """Coordinates observed at or before level ``k`` (pinned, or before the start) are absorbed."""
        lg, level = model["lg"], model["obs_level"]
        active = level > k
        var = lg.s**2 * sigmas[k] ** 2 - lg.sigma_y**2
        return torch.where(active, var, torch.ones_like(var)), active
