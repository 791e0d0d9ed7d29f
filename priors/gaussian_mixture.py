"""Gaussian-mixture priors with exact denoisers, and the exact posterior of linear-Gaussian problems.

Prior: ``p(x0) = sum_k w_k N(x0; m_k, C_k)``. Noising in sigma space (VE) convolves each
component with ``N(0, sigma^2 I)``, so ``p_sigma(x) = sum_k w_k N(x; m_k, C_k + sigma^2 I)``
and Tweedie's formula gives the exact denoiser

    D(x, sigma) = sum_k r_k(x) [m_k + C_k (C_k + sigma^2 I)^{-1} (x - m_k)],
    r_k(x) = softmax_k(log w_k + log N(x; m_k, C_k + sigma^2 I)).

For a linear forward model ``y = A x0 + sigma_y e`` the posterior is again a Gaussian mixture
(Cardoso et al. 2024, "Monte Carlo guided diffusion for Bayesian linear inverse problems",
appendix on the mixture benchmark) with, per component and using Woodbury's identity,

    S_k = A C_k A^T + sigma_y^2 I,      G_k = C_k A^T S_k^{-1},
    mu_k = m_k + G_k (y - A m_k),        Sigma_k = C_k - G_k A C_k,
    w~_k ∝ w_k N(y; A m_k, S_k),        p(y) = sum_k w_k N(y; A m_k, S_k).
"""

from __future__ import annotations

import math

import torch

from priors.base import Prior, check_denoise_input, sample_arguments
from priors.errors import PriorError

__all__ = ["GaussianMixture", "GaussianMixturePrior"]

_LOG_2PI = math.log(2.0 * math.pi)


def _as_matrix(A, d: int, dtype, device) -> torch.Tensor:
    A = torch.as_tensor(A, dtype=dtype, device=device)
    if A.ndim != 2 or A.shape[1] != d:
        raise PriorError(f"the operator must be a matrix of shape (dy, {d}), got {tuple(A.shape)}")
    return A


class GaussianMixture:
    """A finite Gaussian mixture distribution on R^d: sampling and exact log-density.

    ``weights`` (K,) sum to one; ``means`` (K, d); ``covariances`` either (d, d) shared by all
    components or (K, d, d). Densities are computed through Cholesky factors in float64.
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor):
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.means = torch.as_tensor(means, dtype=torch.float64)
        cov = torch.as_tensor(covariances, dtype=torch.float64)
        K, d = self.means.shape
        if self.weights.shape != (K,):
            raise PriorError(f"weights must have shape ({K},), got {tuple(self.weights.shape)}")
        if cov.shape not in ((d, d), (K, d, d)):
            raise PriorError(f"covariances must have shape ({d}, {d}) or ({K}, {d}, {d}), got {tuple(cov.shape)}")
        self.covariances = cov
        self._chol = torch.linalg.cholesky(cov)  # (d, d) or (K, d, d)

    @property
    def dim(self) -> int:
        """Dimension d of the space."""
        return self.means.shape[1]

    def _chol_k(self, k: torch.Tensor | int) -> torch.Tensor:
        return self._chol if self._chol.ndim == 2 else self._chol[k]

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log N(x_i; m_k, C_k)`` for a batch ``x`` (N, d), returned as (N, K)."""
        x = torch.as_tensor(x, dtype=torch.float64, device=self.means.device)
        diff = x[:, None, :] - self.means[None]  # (N, K, d)
        N, K, d = diff.shape
        L = self._chol
        if L.ndim == 2:  # shared covariance: one triangular solve for all (sample, component) pairs
            z = torch.linalg.solve_triangular(L, diff.reshape(N * K, d).T, upper=False).T.reshape(N, K, d)
            logdet = 2.0 * torch.log(torch.diagonal(L)).sum().expand(K)
        else:
            z = torch.stack([torch.linalg.solve_triangular(L[k], diff[:, k].T, upper=False).T for k in range(K)], 1)
            logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        return -0.5 * (z**2).sum(-1) - 0.5 * logdet[None] - 0.5 * self.dim * _LOG_2PI

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density ``log sum_k w_k N(x; m_k, C_k)`` for a batch (N, d) -> (N,)."""
        return torch.logsumexp(self.component_log_prob(x) + torch.log(self.weights)[None], dim=1)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior component probabilities ``p(k | x)`` for a batch (N, d) -> (N, K)."""
        return torch.softmax(self.component_log_prob(x) + torch.log(self.weights)[None], dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` exact samples (float64, shape (n, d))."""
        dev = self.means.device
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, dtype=torch.float64, device=dev, generator=generator)
        if self._chol.ndim == 2:
            return self.means[k] + eps @ self._chol.T
        return self.means[k] + torch.einsum("nij,nj->ni", self._chol[k], eps)

    def mean(self) -> torch.Tensor:
        """Mixture mean ``sum_k w_k m_k``."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Mixture covariance (law of total covariance)."""
        mu = self.mean()
        dm = self.means - mu
        within = (self.covariances if self.covariances.ndim == 2
                  else torch.einsum("k,kij->ij", self.weights, self.covariances))
        return within + torch.einsum("k,ki,kj->ij", self.weights, dm, dm)


class GaussianMixturePrior(Prior):
    """Gaussian-mixture prior ``sum_k w_k N(m_k, C_k)`` with the exact sigma-space denoiser.

    Parameters
    ----------
    means : tensor (K, *shape)
        Component means; ``shape`` is the shape of one sample (flattened to d internally).
    weights : tensor (K,)
        Non-negative component weights (normalised here).
    covariances : tensor (d, d) shared, (K, d, d), or None for the identity
        Component covariances over the flattened sample.

    The denoiser is exact at every sigma (module docstring); :meth:`posterior` and
    :meth:`log_evidence` give the exact answer for ``y = A x0 + sigma_y e``.

    Example::

        import torch
        from priors import GaussianMixturePrior
        prior = GaussianMixturePrior(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), torch.tensor([0.3, 0.7]))
        x0_hat = prior.denoise(torch.randn(5, 2), torch.full((5,), 1.0))
        post = prior.posterior(torch.tensor([[1.0, 0.0]]), torch.tensor([1.5]), sigma_y=0.5)
        samples = post.sample(1000)
    """

    def __init__(self, means, weights, covariances=None, *, sigma_min: float = 1e-3,
                 sigma_max: float | None = None, device=None, dtype=torch.float64, isotropic_variance: float = 1.0):
        super().__init__()
        if not (math.isfinite(float(isotropic_variance)) and float(isotropic_variance) > 0):
            raise PriorError(f"isotropic_variance must be positive, got {isotropic_variance}")
        self.isotropic_variance = float(isotropic_variance)
        means = torch.as_tensor(means, dtype=dtype)
        weights = torch.as_tensor(weights, dtype=dtype)
        if means.ndim < 2:
            raise PriorError(f"means must have shape (K, *shape), got {tuple(means.shape)}")
        K = means.shape[0]
        self.shape = tuple(means.shape[1:])
        d = math.prod(self.shape)
        if weights.shape != (K,):
            raise PriorError(f"weights must have shape ({K},) to match {K} means, got {tuple(weights.shape)}")
        if not bool(torch.isfinite(means).all()) or not bool(torch.isfinite(weights).all()):
            raise PriorError("means and weights must be finite")
        if bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise PriorError("weights must be non-negative with a positive sum")
        self.register_buffer("means", means.reshape(K, d))
        self.register_buffer("weights", weights / weights.sum())
        self.isotropic = covariances is None
        if covariances is not None:
            cov = torch.as_tensor(covariances, dtype=dtype)
            if cov.shape not in ((d, d), (K, d, d)):
                raise PriorError(f"covariances must have shape ({d}, {d}) or ({K}, {d}, {d}), got {tuple(cov.shape)}")
            if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-8 * float(cov.abs().max()) + 1e-12):
                raise PriorError("covariances must be symmetric")
            evals, evecs = torch.linalg.eigh(cov)
            if bool((evals <= 0).any()):
                raise PriorError("covariances must be positive definite")
            self.register_buffer("covariances", cov)
            self.register_buffer("_evals", evals)
            self.register_buffer("_evecs", evecs)
        self.sigma_min = float(sigma_min)
        if sigma_max is None:
            sigma_max = self.default_sigma_max()
        self.sigma_max = float(sigma_max)
        if device is not None:
            self.to(device)

    def default_sigma_max(self) -> float:
        """Largest noise level at which samplers start, chosen so that ``p_sigma_max ~ N(0, sigma_max^2 I)``.

        Samplers draw ``x ~ N(0, sigma_max^2 I)`` in place of ``p_sigma_max``. For a component
        ``N(m_k, C_k)``, ``log N(x; m_k, sigma^2 I + C_k) - log N(x; 0, sigma^2 I)`` fluctuates with
        standard deviation ~ ``||m_k|| / sigma`` from the mean and ~ ``sqrt(tr C_k^2 / 2) / sigma^2`` from the
        covariance (each times a constant ~0.25), so sigma_max is
        ``5 max(max_k ||m_k - m_bar||, (max_k tr C_k^2)^(1/4))`` (at least 80): a log-ratio spread of ~0.05
        (a larger factor spends the steps of a fixed budget over a wider range of noise levels).
        The *Euclidean* norm of the means sets the scale, not their largest coordinate: in high dimension
        the means can lie far from the centre while every coordinate is small, and a coordinate-wise rule
        would start the samplers where ``p_sigma_max`` still tells the modes apart, biasing their weights.
        """
        centred = self.means - self.weights @ self.means
        spread = float(centred.norm(dim=1).max()) if self.num_components > 1 else 0.0
        if self.isotropic:
            tr_c2 = self.isotropic_variance**2 * self.dim
        else:
            tr_c2 = float((self._evals**2).sum(-1).max())
        return max(80.0, 5.0 * spread, 5.0 * tr_c2**0.25)

    @property
    def num_components(self) -> int:
        """Number K of mixture components."""
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        """Flattened dimension d of one sample."""
        return self.means.shape[1]

    def _full_covariances(self) -> torch.Tensor:
        if self.isotropic:
            return self.isotropic_variance * torch.eye(self.dim, dtype=self.means.dtype, device=self.means.device)
        return self.covariances

    def _component_terms(self, x: torch.Tensor, sigma: torch.Tensor):
        """Per-component log N(x; m_k, C_k + s^2 I) (B, K) and denoised means (B, K, d)."""
        s2 = sigma.reshape(-1, 1, 1) ** 2  # (B, 1, 1)
        diff = x[:, None, :] - self.means[None]  # (B, K, d)
        d = self.dim
        if self.isotropic:
            v = self.isotropic_variance
            var = v + s2
            logn = -0.5 * (diff**2).sum(-1) / var[..., 0] - 0.5 * d * (torch.log(var[..., 0]) + _LOG_2PI)
            dk = self.means[None] + diff * (v / var)
            return logn, dk
        evals, evecs = self._evals, self._evecs
        if evals.ndim == 1:
            z = diff @ evecs  # (B, K, d): coordinates in the eigenbasis
            var = evals[None, None] + s2
            logn = -0.5 * (z**2 / var).sum(-1) - 0.5 * torch.log(var).sum(-1) - 0.5 * d * _LOG_2PI
            dk = self.means[None] + (z * evals / var) @ evecs.T
        else:
            z = torch.einsum("bkd,kde->bke", diff, evecs)
            var = evals[None] + s2
            logn = -0.5 * (z**2 / var).sum(-1) - 0.5 * torch.log(var).sum(-1) - 0.5 * d * _LOG_2PI
            dk = self.means[None] + torch.einsum("bke,kde->bkd", z * evals[None] / var, evecs)
        return logn, dk

    def _isotropic_logits(self, xf: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; m_k, var I) via matrix products, (B, K), without (B, K, d) tensors."""
        sq = (xf**2).sum(1, keepdim=True) - 2.0 * xf @ self.means.T + (self.means**2).sum(1)[None]
        return torch.log(self.weights)[None] - 0.5 * sq / var - 0.5 * self.dim * (torch.log(var) + _LOG_2PI)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Exact ``E[x0 | x_sigma = x]`` (module docstring)."""
        sigma = check_denoise_input(x, sigma, self.shape)
        B = x.shape[0]
        xf = x.reshape(B, -1).to(self.means.dtype)
        if self.isotropic:  # D = (v / (v + s^2)) x + (s^2 / (v + s^2)) sum_k r_k m_k, covariances v I
            v = self.isotropic_variance
            var = v + sigma.to(self.means.dtype).reshape(-1, 1) ** 2
            r = torch.softmax(self._isotropic_logits(xf, var), dim=1)
            out = xf * (v / var) + (1.0 - v / var) * (r @ self.means)
            return out.reshape(x.shape).to(x.dtype)
        logn, dk = self._component_terms(xf, sigma.to(self.means.dtype))
        r = torch.softmax(logn + torch.log(self.weights)[None], dim=1)
        out = torch.einsum("bk,bkd->bd", r, dk)
        return out.reshape(x.shape).to(x.dtype)

    def log_prob(self, x: torch.Tensor, sigma: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Exact ``log p_sigma(x)`` of the noised prior for a batch ``(B, *shape)`` -> (B,)."""
        sigma = check_denoise_input(x, sigma, self.shape)
        xf = x.reshape(x.shape[0], -1).to(self.means.dtype)
        if self.isotropic:
            var = self.isotropic_variance + sigma.to(self.means.dtype).reshape(-1, 1) ** 2
            return torch.logsumexp(self._isotropic_logits(xf, var), dim=1)
        logn, _ = self._component_terms(xf, sigma.to(self.means.dtype))
        return torch.logsumexp(logn + torch.log(self.weights)[None], dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None, *, num_steps: int | None = None,
               steps: int | None = None, seed: int | None = None, physical: bool = False,
               batch_size: int | None = None) -> torch.Tensor:
        """Draw ``n`` exact prior samples, shape ``(n, *shape)``: a component ``k ~ Categorical(w)``, then
        ``m_k + L_k z`` (arguments of :meth:`priors.Prior.sample`; the number of steps and the batch size, of the base
        class's ODE, are checked and unused)."""
        n, generator, _ = sample_arguments(n, generator, num_steps, steps, seed, batch_size)
        x = self._draw(n, generator)
        return self.to_physical(x) if physical else x

    def _draw(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        if self.isotropic:  # no dense d x d matrix: m_k + sqrt(v) z
            dev = self.means.device
            k = torch.multinomial(self.weights.to(torch.float64).cpu(), int(n), replacement=True, generator=generator)
            z = torch.randn(int(n), self.dim, generator=generator, dtype=torch.float64)
            x = self.means.to(torch.float64).cpu()[k] + self.isotropic_variance ** 0.5 * z
            return x.reshape(int(n), *self.shape).to(device=dev, dtype=self.means.dtype)
        dev = self.means.device
        where = generator.device if generator is not None else dev  # draw where the generator lives (a seed: CPU)
        mix = GaussianMixture(self.weights.to(where), self.means.to(where), self._full_covariances().to(where))
        return mix.sample(n, generator).reshape(n, *self.shape).to(device=dev, dtype=self.means.dtype)

    def _linear_gaussian(self, A, y, sigma_y):
        d = self.dim
        A = _as_matrix(A, d, torch.float64, self.means.device)
        y = torch.as_tensor(y, dtype=torch.float64, device=self.means.device).reshape(-1)
        if y.shape[0] != A.shape[0]:
            raise PriorError(f"y has {y.shape[0]} entries but the operator has {A.shape[0]} rows")
        sigma_y = float(sigma_y)
        if not math.isfinite(sigma_y) or sigma_y < 0:
            raise PriorError(f"sigma_y must be finite and non-negative, got {sigma_y}")
        C = self._full_covariances().to(torch.float64)
        m = self.means.to(torch.float64)
        I = torch.eye(A.shape[0], dtype=torch.float64, device=A.device)
        CAt = C @ A.T  # (d, dy) or (K, d, dy)
        S = A @ CAt + sigma_y**2 * I  # (dy, dy) or (K, dy, dy)
        G = torch.linalg.solve(S, CAt.transpose(-1, -2)).transpose(-1, -2)  # C A^T S^{-1}
        resid = y[None] - m @ A.T  # (K, dy)
        Ls = torch.linalg.cholesky(S)
        if Ls.ndim == 2:
            z = torch.linalg.solve_triangular(Ls, resid.T, upper=False).T
            mu = m + resid @ G.T
            post_cov = C - G @ A @ C
        else:
            z = torch.linalg.solve_triangular(Ls, resid[..., None], upper=False)[..., 0]
            mu = m + torch.einsum("kij,kj->ki", G, resid)
            post_cov = C - G @ A @ C
        logdet = 2.0 * torch.log(torch.diagonal(Ls, dim1=-2, dim2=-1)).sum(-1)
        log_lik_k = -0.5 * (z**2).sum(-1) - 0.5 * logdet - 0.5 * A.shape[0] * _LOG_2PI  # (K,)
        log_joint = torch.log(self.weights.to(torch.float64)) + log_lik_k
        post_cov = 0.5 * (post_cov + post_cov.transpose(-1, -2))
        return mu, post_cov, log_joint

    def posterior(self, A, y, sigma_y: float) -> GaussianMixture:
        """Exact posterior of ``y = A x0 + sigma_y e`` (A a (dy, d) matrix), as a :class:`GaussianMixture`."""
        mu, cov, log_joint = self._linear_gaussian(A, y, sigma_y)
        return GaussianMixture(torch.softmax(log_joint, 0), mu, cov)

    def log_evidence(self, A, y, sigma_y: float) -> float:
        """Exact ``log p(y) = log sum_k w_k N(y; A m_k, A C_k A^T + sigma_y^2 I)``."""
        _, _, log_joint = self._linear_gaussian(A, y, sigma_y)
        return float(torch.logsumexp(log_joint, 0))

    def config(self) -> dict:
        """JSON description (sizes only; the parameters live in the object)."""
        return {"class": type(self).__name__, "shape": list(self.shape), "num_components": self.num_components,
                "isotropic": self.isotropic, "isotropic_variance": self.isotropic_variance, "sigma_min": self.sigma_min,
                "sigma_max": self.sigma_max}
