"""The hybrid two-level estimator of posterior means (Yang, Adie, See, Gualandi & Mengaldo, arXiv 2307.01463).

Posterior means of a quantity of interest ``Q`` under the accurate posterior ``pi_f`` by telescoping over a
cheap surrogate posterior ``pi_s`` (both ``∝ exp(-Phi) mu_0`` with the same prior):

    E_f[Q] = E_s[Q] + (E_f[Q] - E_s[Q])
           ≈ (1 / N_0) sum_n Q(u_s^n)  +  (1 / N_1) sum_n [Q(u_f^n) - Q(v^n)].

The first term is a long pCN chain on the surrogate only (no accurate solves). The correction term is a
short two-level chain in the manner of Dodwell, Ketelsen, Scheichl & Teckentrup (2015, SIAM/ASA JUQ 3,
eq. 3.4): its proposals ``v^n`` are (thinned, hence nearly independent) states of a second stretch of the
surrogate chain, i.e. draws of ``pi_s``; an independence proposal from ``pi_s`` is accepted for ``pi_f`` with

    alpha(u, v) = min(1, exp([Phi_f(u) - Phi_s(u)] - [Phi_f(v) - Phi_s(v)])),

one accurate solve per correction step. ``u_f^n`` is a chain for ``pi_f`` and ``v^n ~ pi_s``, coupled
because ``u_f^n = v^n`` whenever the proposal is accepted, so ``Q(u_f) - Q(v)`` has a small variance when the
surrogate is good. The two terms use disjoint stretches of the surrogate chain and are treated as
independent: the estimator's variance is ``Var_s(Q) / ESS_0 + Var(Y) / ESS_1`` per component, with
ESS from ``arviz.ess`` (bulk) of each series; both parts are reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from priors import GaussianMeasure
from samplers.mcmc.chains import sample_chains
from samplers.mcmc.kernel import metropolis
from samplers.mcmc.pcn import PCN
from samplers.validation import int_at_least, positive_int

__all__ = ["HybridEstimate", "hybrid_two_level"]


@dataclass
class HybridEstimate:
    """Result of :func:`hybrid_two_level`: the estimate of ``E_f[Q]`` and its parts, per component of ``Q``.

    ``mean = base_mean + correction``; ``variance = base_variance + correction_variance`` (Monte Carlo
    variance of the estimator); ``fine_solves`` / ``surrogate_solves``; ``correction_acceptance``.
    """

    mean: torch.Tensor
    variance: torch.Tensor
    base_mean: torch.Tensor
    base_variance: torch.Tensor
    correction: torch.Tensor
    correction_variance: torch.Tensor
    fine_solves: int
    surrogate_solves: int
    correction_acceptance: float
    wall_time_s: float

    def summary(self) -> dict:
        """JSON values: the largest standard errors and the costs."""
        return {"max_std_error": float(self.variance.sqrt().max()),
                "max_base_std_error": float(self.base_variance.sqrt().max()),
                "max_correction_std_error": float(self.correction_variance.sqrt().max()),
                "max_abs_correction": float(self.correction.abs().max()), "fine_solves": self.fine_solves,
                "surrogate_solves": self.surrogate_solves, "correction_acceptance": self.correction_acceptance,
                "wall_time_s": self.wall_time_s}


def _mc_variance(values: np.ndarray) -> np.ndarray:
    """Variance of the mean of a (chain, draw, q) series: sample variance / bulk ESS."""
    import arviz as az

    ds = az.convert_to_dataset({"q": values}, dims={"q": ["q_dim"]})
    ess = np.asarray(az.ess(ds, method="bulk")["q"].values, dtype=float)
    var = values.reshape(-1, values.shape[-1]).var(0, ddof=1)
    return np.where(var > 0, var / np.maximum(ess, 1.0), 0.0)


def hybrid_two_level(surrogate: Callable, fine: Callable, measure: GaussianMeasure, u0: torch.Tensor, *,
                     qoi: Callable | None = None, base_iterations: int = 5000, correction_steps: int = 200,
                     thin: int = 10, beta: float = 0.2, warmup: int = 500, target_acceptance: float = 0.25,
                     seed: int = 0) -> HybridEstimate:
    """Estimate ``E_f[qoi(u)]`` by a long surrogate chain plus a short correction chain (module docstring).

    Parameters
    ----------
    surrogate, fine : potentials ``Phi_s`` and ``Phi_f`` (callables ``(C, d) -> (C,)``)
    measure : the shared Gaussian prior
    u0 : starting states ``(C, d)`` of ``C`` surrogate chains (and ``C`` correction chains)
    qoi : ``Q: (n, d) -> (n, q)`` (default: ``u`` itself)
    base_iterations : kept surrogate-chain steps for the first term (per chain)
    correction_steps : correction-chain steps per chain (one fine solve each)
    thin : surrogate steps between successive correction proposals
    beta, warmup, target_acceptance : the surrogate pCN chain's step size and its adaptation

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from priors import StandardGaussian
        from samplers.mcmc import Potential, hybrid_two_level
        A = torch.eye(2, dtype=torch.float64)
        fine = InverseProblem.simulate(MatrixOperator(A), Gaussian(0.3), torch.ones(2, dtype=torch.float64), seed=0)
        sur = InverseProblem(MatrixOperator(1.1 * A), fine.y, fine.noise)
        est = hybrid_two_level(Potential(sur), Potential(fine), StandardGaussian(2), torch.zeros(2, 2),
                               base_iterations=2000, correction_steps=100)
        est.mean, est.variance.sqrt()
    """
    n_base = int_at_least(base_iterations, "base_iterations", 2)
    n_corr = int_at_least(correction_steps, "correction_steps", 2)
    thin = positive_int(thin, "thin")
    qoi = qoi if qoi is not None else (lambda u: u)
    t0 = time.perf_counter()
    u0 = torch.as_tensor(u0, dtype=torch.float64)
    C = u0.shape[0]
    base = sample_chains(PCN(surrogate, measure, beta), u0, n_base + n_corr * thin, seed=seed, warmup=warmup,
                         target_acceptance=target_acceptance)
    first = base.draws[:, :n_base]
    props = base.draws[:, n_base + thin - 1::thin][:, :n_corr]          # (C, n_corr, d) ~ pi_s
    phi_s_props = base.potentials[:, n_base + thin - 1::thin][:, :n_corr]   # Phi_s at the proposals
    q_first = torch.as_tensor(qoi(first.reshape(-1, first.shape[-1])), dtype=torch.float64).reshape(C, n_base, -1)

    g = torch.Generator().manual_seed(int(seed) + 1)
    u = props[:, 0].clone()
    phi_f = fine(u)
    dphi = phi_f - phi_s_props[:, 0]          # Phi_f - Phi_s at the correction chain's state
    accepted, ys = 0, []
    for n in range(n_corr):
        v = props[:, n]
        dv = fine(v) - phi_s_props[:, n]
        acc = metropolis(dphi - dv, g)
        u = torch.where(acc[:, None], v, u)
        dphi = torch.where(acc, dv, dphi)
        accepted += int(acc.sum())
        ys.append(torch.as_tensor(qoi(u), dtype=torch.float64) - torch.as_tensor(qoi(v), dtype=torch.float64))
    y = torch.stack(ys, 1)                     # (C, n_corr, q)
    base_mean, corr = q_first.reshape(-1, q_first.shape[-1]).mean(0), y.reshape(-1, y.shape[-1]).mean(0)
    base_var = torch.from_numpy(_mc_variance(q_first.numpy()))
    corr_var = torch.from_numpy(_mc_variance(y.numpy()))
    return HybridEstimate(base_mean + corr, base_var + corr_var, base_mean, base_var, corr, corr_var,
                          fine_solves=C * (n_corr + 1), surrogate_solves=base.evaluations[0],
                          correction_acceptance=accepted / (C * n_corr), wall_time_s=time.perf_counter() - t0)
