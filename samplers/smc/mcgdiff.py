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
matching level is simply ``tau_i``.)

**Levels.** The paper puts a level at every ``tau_i``: ``num_steps + rank(A)`` network calls, which for
an image operator (CT with 30 views: ~2,300 observed directions) is thousands of steps. We keep the
EDM grid and observe coordinate ``i`` *between* the two grid levels around it,
``s_hi > tau_i >= s_lo``: on the forward path ``x_tau`` given its neighbours is the Brownian bridge

    x_tau | x_hi, x_lo ~ N((1 - lam_i) x_lo + lam_i x_hi,  b_i),
    lam_i = (tau_i^2 - s_lo^2) / (s_hi^2 - s_lo^2),   b_i = (tau_i^2 - s_lo^2)(s_hi^2 - tau_i^2) / (s_hi^2 - s_lo^2),

so on the step ``s_hi -> s_lo`` the observation is a Gaussian one of ``z_lo,i`` with gain
``(1 - lam_i) s_i``, the per-particle datum ``y_bar_i - lam_i s_i z_hi,i`` and variance ``s_i^2 b_i``;
the tilted kernel stays closed-form. ``tau_i`` on a grid level gives ``lam_i = b_i = 0``: the paper's
pinning. A run costs ``num_steps`` network calls per particle whatever the rank. The twist of a
coordinate before its step, at level ``s``:

    N(y_bar_i; s_i z_i, s_i^2 s^2 - sigma_y^2)   (y_bar_i / s_i is x_s's coordinate noised back down to
                                                  tau_i: the paper's potential with the forward kernel)

and after its step none (the coordinate follows the prior kernel; unobserved directions always do).

Coordinates with ``tau_i >= sigma_max`` (singular values below ``sigma_y / sigma_max``) are observed
before the chain starts: the initial draw conditions ``N(0, sigma_max^2)`` on
``y_bar_i = s_i x_i + N(0, sigma_y^2 - s_i^2 sigma_max^2)`` (forward noising from ``sigma_max`` to
``tau_i``). Each step samples the ancestral kernel tilted by the next twist exactly and weights by
the ratio of its normaliser to the current twist (:mod:`samplers.smc.linear_twist`); the
evidence estimate is of ``p(y)`` itself (the twists are normalised densities of ``y_bar``).
The paper resamples multinomially at every step; we resample systematically, by default at every
step whose weights are not uniform (``resample_threshold = 1``). No network gradients.

The singular basis comes from :class:`samplers.smc.linear_gaussian.LinearGaussian`: the operator's structured
basis where it has one (Cartesian MRI, parallel-beam CT, ``MatrixOperator``), the dense matrix of
``x -> F(to_physical(x))`` for small operators, matrix-free from the adjoint, or truncated to a memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplers.smc.linear_twist import LinearTwistSMC, TwistPath

__all__ = ["MCGdiff", "BridgePath"]


@dataclass(frozen=True)
class BridgePath(TwistPath):
    """The twists of MCGdiff (module docstring): per observed coordinate ``i``, the step that observes it,
    ``obs_level[i]`` (the index ``k`` of the first level ``s_k <= tau_i``; ``-1`` when ``tau_i >= sigma_max``,
    observed before the start), and its Brownian-bridge coefficients ``lam[i]``, ``bridge_var[i]``."""

    obs_level: torch.Tensor
    lam: torch.Tensor
    bridge_var: torch.Tensor

    @property
    def tau(self) -> torch.Tensor:
        """The matching levels ``tau_i = sigma_y / s_i`` (float64)."""
        return self.lg.sigma_y / self.lg.s.to(torch.float64)

    @classmethod
    def build(cls, lg, sigmas: list[float]) -> BridgePath:
        """The matching levels ``tau_i`` placed on the grid ``sigmas`` (ending at 0)."""
        tau = lg.sigma_y / lg.s.to(torch.float64)
        lv = torch.tensor(sigmas, dtype=torch.float64, device=tau.device)
        first = (lv[None, :] <= tau[:, None]).to(torch.int64).argmax(1)       # levels end at 0 < tau
        before = tau >= sigmas[0]
        obs = torch.where(before, torch.full_like(first, -1), first)
        hi, lo = lv[(obs - 1).clamp_min(0)], lv[obs.clamp_min(0)]
        t2 = tau**2
        span = (hi**2 - lo**2).clamp_min(1e-300)
        lam = torch.where(before, torch.zeros_like(tau), (t2 - lo**2) / span).clamp(0.0, 1.0)
        bridge = torch.where(before, torch.zeros_like(tau), (t2 - lo**2) * (hi**2 - t2) / span).clamp_min(0.0)
        dt = lg.s.dtype
        return cls(lg, sigmas, obs, lam.to(dt), bridge.to(dt))

    def twist(self, k):
        """At ``k = 0``: variance ``sigma_y^2 - s_i^2 s_0^2`` for coordinates observed before the start,
        ``s_i^2 s_0^2 - sigma_y^2`` for the others (their pre-observation twist). The moves to later levels
        are tilted by :meth:`potential` instead."""
        lg, level = self.lg, self.obs_level
        s2 = lg.s**2 * self.sigmas[k] ** 2
        var = torch.where(level < 0, lg.sigma_y**2 - s2, s2 - lg.sigma_y**2)
        active = torch.ones_like(level, dtype=torch.bool) if k == 0 else level > k
        return torch.where(active, var.clamp_min(0.0), torch.ones_like(var)), active

    def pending(self, k):
        """Coordinates observed at or before step ``k`` are absorbed; the others carry their pre-observation twist."""
        lg, level = self.lg, self.obs_level
        active = level > k
        var = lg.s**2 * self.sigmas[k] ** 2 - lg.sigma_y**2
        return torch.where(active, var, torch.ones_like(var)), active

    def potential(self, k):
        """``(gain, var, active)`` on the step to level ``k``: the bridge observation (gain ``(1 - lam_i) s_i``,
        variance ``s_i^2 b_i``) for coordinates observed on this step, the pre-observation twist at ``s_k``
        for later ones."""
        lg, level = self.lg, self.obs_level
        now, later = level == k, level > k
        gain = torch.where(now, (1.0 - self.lam) * lg.s, lg.s)
        var = torch.where(now, lg.s**2 * self.bridge_var, lg.s**2 * self.sigmas[k] ** 2 - lg.sigma_y**2)
        active = now | later
        return gain, torch.where(active, var.clamp_min(0.0), torch.ones_like(var)), active

    def datum(self, k, z):
        """``y_bar_i - lam_i s_i z_i`` of the current particles ``z = Vh x`` for coordinates observed on the step
        to ``k``, else ``y_bar_i``."""
        lg, now = self.lg, self.obs_level == k
        if not bool(now.any()):
            return None
        return torch.where(now, lg.y_bar - self.lam * lg.s * z, lg.y_bar.expand_as(z))


class MCGdiff(LinearTwistSMC):
    """Monte Carlo guided diffusion: exact-observation SMC in the operator's singular basis.

    Needs a linear forward model with Gaussian noise (refuses others with a ValueError).

    Parameters
    ----------
    num_steps : EDM levels (observations fall between them as Brownian-bridge potentials: module docstring)
    resample_threshold : resample when ESS < threshold * N (default 1: every step, as the paper)
    rho : EDM schedule exponent
    reverse_variance : ``"analytic"`` (default) or ``"ancestral"`` (:class:`samplers.smc.SMCSampler`)

    Example::

        from inverse.problems import gmm_case
        from samplers import MCGdiff
        case = gmm_case(8, 2, seed=0)
        post = MCGdiff(num_steps=50).sample(case.problem, case.prior, 256, seed=0)
        post.mean(), post.diagnostics["log_evidence"], case.log_evidence
    """

    def __init__(self, num_steps: int = 100, resample_threshold: float = 1.0, rho: float = 7.0,
                 reverse_variance: str = "analytic"):
        super().__init__(num_steps, resample_threshold, rho, reverse_variance)

    def setup(self, problem, prior, sigmas) -> BridgePath:
        """Singular basis, matching levels and bridge coefficients (:meth:`BridgePath.build`)."""
        return BridgePath.build(self.basis(problem, prior), sigmas)
