"""Gaussian measures on parameter vectors and fields, for function-space MCMC (pCN, delayed acceptance).

MCMC in this library works on a parameter ``u`` with a Gaussian prior ``mu_0 = N(m_0, C_0)``, unlike the
diffusion samplers. A :class:`GaussianMeasure` gives what the preconditioned Crank-Nicolson proposal
(Cotter, Roberts, Stuart & White 2013, Statistical Science 28, 424-446) needs: the mean ``m_0``, draws of
the centred noise ``xi ~ N(0, C_0)``, the exact covariance, and the unnormalised log-density (for the
generalised pCN of Rudolf & Sprungk 2018, whose proposal is reversible for another Gaussian). Three measures:

- :class:`StandardGaussian`: ``N(0, I_d)``, e.g. Karhunen-Loeve coefficients or the latent ``z`` of a
  flow / diffusion prior;
- :class:`DenseGaussian`: ``N(m_0, C_0)`` with an explicit covariance (``C_0 = L L^T``, Cholesky);
- :class:`MaternField`: a Matern-type Gaussian random field on the unit square through its truncated
  Karhunen-Loeve (KL) expansion. With ``C = sigma^2 (-Lap + tau^2)^{-alpha}`` and the Neumann Laplacian
  (eigenfunctions ``phi_k(s) = sqrt(c_k) cos(pi k s)``, ``c_0 = 1``, ``c_k = 2``; eigenvalues
  ``pi^2 (k^2 + l^2)``),

      x(s, t) = m_0(s, t) + sum_{(k, l) in K} sqrt(mu_kl) xi_kl phi_k(s) phi_l(t),     xi_kl ~ N(0, 1),
      mu_kl = sigma^2 (pi^2 (k^2 + l^2) + tau^2)^{-alpha},

  keeping the ``num_modes`` largest ``mu_kl`` (Lindgren, Rue & Lindstroem 2011 for the SPDE view). On
  the cell centres of an ``N x N`` grid the cosines are exactly orthogonal (the DCT-II), so
  :meth:`MaternField.whiten` recovers ``xi`` from a field exactly, and the covariance of the
  discretised truncated field is exactly ``B^T B`` with ``B = diag(sqrt(mu)) Phi``.
"""

from __future__ import annotations

import math

import torch

from priors.errors import PriorError

__all__ = ["GaussianMeasure", "StandardGaussian", "DenseGaussian", "MaternField"]


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


class GaussianMeasure:
    """A Gaussian measure ``N(m_0, C_0)`` on ``R^d``: the prior of pCN and delayed-acceptance chains.

    Subclasses set ``dim`` and ``mean`` (a float64 tensor ``(d,)``) and implement :meth:`sample_centred`
    (draws of ``N(0, C_0)``) and :meth:`covariance`.

    Example::

        import torch
        from priors.function_space import DenseGaussian
        mu0 = DenseGaussian(torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.5], [0.5, 2.0]]))
        u = mu0.sample(1000, torch.Generator().manual_seed(0))   # (1000, 2)
    """

    dim: int
    mean: torch.Tensor

    def sample_centred(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover
        """``n`` draws of ``N(0, C_0)`` -> ``(n, d)`` float64."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of ``N(m_0, C_0)`` -> ``(n, d)`` float64."""
        return self.mean + self.sample_centred(n, generator)

    def covariance(self) -> torch.Tensor:  # pragma: no cover
        """The covariance ``C_0`` (d, d), float64."""
        raise NotImplementedError

    def log_density(self, u: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-density ``-1/2 (u - m_0)^T C_0^{-1} (u - m_0)`` of ``u (B, d)`` -> ``(B,)`` float64.

        Used by the generalised pCN correction (:func:`samplers.mcmc.reference_correction`). Needs a
        non-singular covariance: a field measure of rank below its dimension (a truncated KL expansion
        in pixel space) raises; run such chains in the KL coefficients instead.
        """
        chol = getattr(self, "_log_density_chol", None)
        if chol is None:
            chol, info = torch.linalg.cholesky_ex(self.covariance())
            if int(info) != 0:
                raise PriorError(f"{type(self).__name__}: the covariance is singular, so the density is not defined "
                                 "on R^d; use the measure's whitened coordinates (e.g. KL coefficients)")
            self._log_density_chol = chol
        r = torch.as_tensor(u, dtype=torch.float64).reshape(-1, self.dim) - self.mean
        w = torch.linalg.solve_triangular(chol, r.T, upper=False)
        return -0.5 * (w * w).sum(0)

    def config(self) -> dict:
        """JSON description."""
        return {"class": type(self).__name__, "dim": int(self.dim)}

    def _n(self, n) -> int:
        if int(n) != n or n < 1:
            raise PriorError(f"the number of draws must be a positive integer, got {n}")
        return int(n)


class StandardGaussian(GaussianMeasure):
    """``N(0, I_d)``: KL coefficients, or the latent ``z`` of a flow / diffusion prior.

    Example::

        from priors.function_space import StandardGaussian
        z = StandardGaussian(16).sample(4)     # (4, 16)
    """

    def __init__(self, dim: int):
        if int(dim) != dim or dim < 1:
            raise PriorError(f"StandardGaussian: dim must be a positive integer, got {dim}")
        self.dim = int(dim)
        self.mean = torch.zeros(self.dim, dtype=torch.float64)

    def sample_centred(self, n, generator=None):
        """``(n, d)`` standard normal draws."""
        _check_generator(generator)
        return torch.randn(self._n(n), self.dim, generator=generator, dtype=torch.float64)

    def covariance(self):
        """The identity."""
        return torch.eye(self.dim, dtype=torch.float64)

    def log_density(self, u):
        """``-|u|^2 / 2`` -> ``(B,)``."""
        u = torch.as_tensor(u, dtype=torch.float64).reshape(-1, self.dim)
        return -0.5 * (u * u).sum(1)


class DenseGaussian(GaussianMeasure):
    """``N(m_0, C_0)`` with an explicit symmetric positive-definite covariance; draws ``m_0 + L xi``, ``C_0 = L L^T``.

    Example::

        import torch
        from priors.function_space import DenseGaussian
        mu0 = DenseGaussian(torch.ones(3), 0.5 * torch.eye(3))
        xi = mu0.sample_centred(2)             # (2, 3), N(0, C_0)
    """

    def __init__(self, mean, covariance):
        mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        cov = torch.as_tensor(covariance, dtype=torch.float64)
        if cov.shape != (mean.numel(), mean.numel()):
            raise PriorError(f"DenseGaussian: covariance must have shape ({mean.numel()}, {mean.numel()}), "
                             f"got {tuple(cov.shape)}")
        if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(cov).all())):
            raise PriorError("DenseGaussian: mean and covariance must be finite")
        if not torch.allclose(cov, cov.T, atol=1e-10 * float(cov.abs().max().clamp_min(1.0))):
            raise PriorError("DenseGaussian: the covariance must be symmetric")
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:
            raise PriorError("DenseGaussian: the covariance must be positive definite")
        self.dim, self.mean, self._cov, self.chol = mean.numel(), mean, cov, chol
        self._log_density_chol = chol

    def sample_centred(self, n, generator=None):
        """``L xi``, ``xi ~ N(0, I)`` -> ``(n, d)``."""
        _check_generator(generator)
        return torch.randn(self._n(n), self.dim, generator=generator, dtype=torch.float64) @ self.chol.T

    def covariance(self):
        """``C_0``."""
        return self._cov.clone()


class MaternField(GaussianMeasure):
    """Matern-type Gaussian random field on ``[0, 1]^2`` by its truncated Karhunen-Loeve expansion (module docstring).

    The measure lives on fields of ``size x size`` cells (``d = size^2``, float64, flattened row-major as
    ``x[i, j]`` at ``((i + 1/2) / N, (j + 1/2) / N)``, the :class:`forward_models.darcy.DarcyFlow` grid).
    For pCN run the chain in the KL coefficients ``xi ~ StandardGaussian(num_modes)`` and map them with
    :meth:`field`; :meth:`whiten` is its exact inverse on the range of the expansion.

    Parameters
    ----------
    size : N, cells per side
    num_modes : K, number of KL modes kept (largest eigenvalues first; at most N^2)
    alpha, tau, sigma : covariance ``sigma^2 (-Lap + tau^2)^{-alpha}``; ``sigma`` defaults to
        ``tau^(alpha - 1)`` as in :func:`forward_models.generators.grf.matern_spectrum`
    mean : scalar or ``(N, N)`` mean field ``m_0``

    Example::

        from priors.function_space import MaternField
        prior = MaternField(32, num_modes=32, alpha=2.0, tau=3.0, sigma=6.0, mean=0.5)
        x = prior.sample(4).reshape(4, 1, 32, 32)   # log-permeabilities
        xi = prior.whiten(x.reshape(4, -1))          # (4, 32) KL coefficients, exact
    """

    def __init__(self, size: int, num_modes: int = 32, *, alpha: float = 2.0, tau: float = 3.0,
                 sigma: float | None = None, mean=0.0):
        if int(size) != size or size < 2:
            raise PriorError(f"MaternField: size must be an integer >= 2, got {size}")
        n = int(size)
        if int(num_modes) != num_modes or not 1 <= num_modes <= n * n:
            raise PriorError(f"MaternField: num_modes must be an integer in [1, {n * n}], got {num_modes}")
        for name, v in (("alpha", alpha), ("tau", tau)) + ((("sigma", sigma),) if sigma is not None else ()):
            if not (math.isfinite(float(v)) and float(v) > 0):
                raise PriorError(f"MaternField: {name} must be positive and finite, got {v}")
        sigma = float(tau) ** (float(alpha) - 1.0) if sigma is None else float(sigma)
        m = torch.as_tensor(mean, dtype=torch.float64)
        if m.ndim == 0:
            m = m.expand(n, n)
        if m.shape != (n, n) or not bool(torch.isfinite(m).all()):
            raise PriorError(f"MaternField: mean must be a finite scalar or an ({n}, {n}) field, got shape "
                             f"{tuple(m.shape)}")
        k = torch.arange(n, dtype=torch.float64)
        kk, ll = torch.meshgrid(k, k, indexing="ij")
        mu = sigma**2 * (math.pi**2 * (kk**2 + ll**2) + float(tau) ** 2) ** (-float(alpha))
        order = torch.argsort(mu.reshape(-1), descending=True, stable=True)[: int(num_modes)]
        self.modes = torch.stack([kk.reshape(-1)[order], ll.reshape(-1)[order]], 1).long()  # (K, 2)
        self.eigenvalues = mu.reshape(-1)[order]                                               # (K,)
        centres = (k + 0.5) / n
        c = torch.where(k == 0, 1.0, 2.0).sqrt()
        cos = c[:, None] * torch.cos(math.pi * k[:, None] * centres[None, :])  # cos[k, i] = phi_k(s_i)
        phi = cos[self.modes[:, 0]][:, :, None] * cos[self.modes[:, 1]][:, None, :]  # (K, N, N)
        self.basis = phi.reshape(len(order), n * n)                                 # orthogonal rows, norm^2 = N^2
        self.size, self.num_modes = n, int(num_modes)
        self.alpha, self.tau, self.sigma = float(alpha), float(tau), sigma
        self.dim = n * n
        self.mean = m.reshape(-1).clone()

    def field(self, xi: torch.Tensor) -> torch.Tensor:
        """KL coefficients ``(B, K)`` -> fields ``m_0 + sum_k sqrt(mu_k) xi_k phi_k``, ``(B, 1, N, N)`` float64."""
        xi = torch.as_tensor(xi)
        if xi.ndim != 2 or xi.shape[1] != self.num_modes:
            raise PriorError(f"MaternField.field: expected KL coefficients of shape (B, {self.num_modes}), "
                             f"got {tuple(xi.shape)}")
        x = self.mean + (xi.to(torch.float64) * self.eigenvalues.sqrt()) @ self.basis
        return x.reshape(-1, 1, self.size, self.size)

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        """Fields ``(B, N^2)`` or ``(B, 1, N, N)`` -> KL coefficients ``(B, K)`` (exact on the expansion's range)."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, self.dim)
        return ((x - self.mean) @ self.basis.T) / (self.size**2 * self.eigenvalues.sqrt())

    def sample_centred(self, n, generator=None):
        """``(n, N^2)`` draws of the centred truncated field."""
        _check_generator(generator)
        xi = torch.randn(self._n(n), self.num_modes, generator=generator, dtype=torch.float64)
        return (xi * self.eigenvalues.sqrt()) @ self.basis

    def covariance(self):
        """Exact covariance of the discretised truncated field, ``B^T B`` (d, d) with ``d = N^2``."""
        b = self.basis * self.eigenvalues.sqrt()[:, None]
        return b.T @ b

    def pointwise_std(self) -> torch.Tensor:
        """Standard deviation of the field at each cell, ``(N, N)``."""
        return ((self.basis**2) * self.eigenvalues[:, None]).sum(0).sqrt().reshape(self.size, self.size)

    def config(self) -> dict:
        """JSON description (the mean as its average value)."""
        return {"class": "MaternField", "size": self.size, "num_modes": self.num_modes, "alpha": self.alpha,
                "tau": self.tau, "sigma": self.sigma, "mean_average": float(self.mean.mean())}
