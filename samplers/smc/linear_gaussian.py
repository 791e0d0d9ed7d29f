"""The likelihood of a linear-Gaussian problem in the operator's singular basis (:class:`LinearGaussian`).

For ``y = A x + b + sigma_y e`` with ``A = U diag(s) Vh``, ``z = Vh x`` and ``y_bar = U^T (y - b)``, the
likelihood factorises over the r singular directions, and a Gaussian kernel tilted by a per-coordinate
Gaussian potential has closed-form samples and normaliser: the building block of the exact-linear SMC
samplers (:mod:`samplers.smc.linear_twist`) and of TDS's linear twist. The decompositions come from
:mod:`forward_models.linalg`.
"""

from __future__ import annotations

import copy
import math
import time

import torch

from forward_models.linalg import cached_decomposition, gram_eigh, operator_fingerprint, thin_svd
from forward_models.noise import Gaussian
from priors.base import Prior
from samplers.errors import SamplerConfigError

__all__ = ["LinearGaussian", "MAX_DENSE_DIM", "MAX_DENSE_ENTRIES"]

_LOG_2PI = math.log(2.0 * math.pi)

#: largest flattened input size for which a dense operator matrix is built and decomposed
MAX_DENSE_DIM = 8192

#: largest dense operator (``prod(output) * prod(input)`` entries) :class:`LinearGaussian` builds; larger
#: operators (multi-coil MRI: 65536 x 4096) are decomposed matrix-free through their adjoint (``gram_eigh``)
MAX_DENSE_ENTRIES = 40_000_000


def _fingerprint(fm, prior, shape) -> tuple:
    """Cache key of the decomposition of ``x -> fm(prior.to_physical(x))`` (the prior's identity and dtype)."""
    return operator_fingerprint(fm, prior.to_physical, shape, (id(prior), str(prior.dtype)))


def _log_perp(perp2: float, n_perp: int, sigma_y: float) -> float:
    """``log N(y_perp; 0, sigma_y^2 I)`` of the data outside the operator's range (``n_perp`` entries,
    squared norm ``perp2``)."""
    return -0.5 * perp2 / sigma_y**2 - 0.5 * n_perp * (_LOG_2PI + 2 * math.log(sigma_y))


class LinearGaussian:
    """``y = A x + b + sigma_y e`` in the prior's model space, in the singular basis ``A = U diag(s) Vh``.

    With ``y_bar = U^T (y - b)`` (r entries, r = rank) and ``z = Vh x``, the likelihood factorises:
    ``log p(y | x) = sum_i log N(y_bar_i; s_i z_i, sigma_y^2) + log N(y_perp; 0, sigma_y^2 I)`` where
    ``y_perp`` is the part of ``y - b`` outside ``range(U)`` (present when rank < dy). SMC twists
    replace ``sigma_y^2`` by a per-coordinate variance ``w_i`` (:meth:`log_twist`), and a Gaussian
    kernel ``N(x'; m, v I)`` tilted by such a twist has closed-form samples and normaliser
    (:meth:`tilted_sample`):

        x'_i | . ~ N(m_i + v s_i (y_bar_i - s_i m_i) / (s_i^2 v + w_i),  v w_i / (s_i^2 v + w_i)),
        int N(x'; m, v I) N(y_bar; s z', w) dx' = N(y_bar; s z_m, s^2 v + w)        (per coordinate).

    Built by :meth:`from_problem`: the operator's own ``svd()`` when it has one and the prior's
    ``to_physical`` is the identity; otherwise a dense matrix of ``x -> F(to_physical(x)) - b``
    (``b = F(to_physical(0))``; assumes ``to_physical`` affine, as normalisations are), limited to
    ``MAX_DENSE_DIM`` inputs, decomposed by :func:`thin_svd`. An operator whose dense matrix would
    exceed ``MAX_DENSE_ENTRIES`` (multi-coil MRI) is decomposed matrix-free from its ``adjoint`` by
    :func:`gram_eigh`; ``U`` is then ``None`` (only ``y_bar = U^T (y - b)`` and ``Vh`` are used).
    Either decomposition is kept for the next run on the same operator and prior
    (:func:`forward_models.linalg.cached_decomposition`, keyed by :func:`forward_models.linalg.operator_fingerprint`).
    """

    def __init__(self, U, s, Vh, y_bar, sigma_y: float, log_perp: float, input_shape, *,
                 decomposition_s: float = 0.0, decomposition_reused: bool = False):
        self.U, self.s, self.Vh, self.y_bar = U, s, Vh, y_bar
        self.sigma_y = float(sigma_y)
        self.log_perp = float(log_perp)
        self.input_shape = tuple(input_shape)
        #: seconds the operator's decomposition took when computed, and whether this instance reused it
        self.decomposition_s = float(decomposition_s)
        self.decomposition_reused = bool(decomposition_reused)

    @staticmethod
    def check_problem(problem, who: str = "this sampler") -> None:
        """Refuse, in one line, a problem that has no linear-Gaussian singular basis: a non-linear forward model
        or non-Gaussian noise."""
        fm = problem.forward_model
        if not fm.linear:
            raise SamplerConfigError(f"{who} needs a linear forward model, but {type(fm).__name__} is not linear")
        if not isinstance(problem.noise, Gaussian):
            raise SamplerConfigError(f"{who} needs Gaussian noise, got {type(problem.noise).__name__}")

    @classmethod
    def from_problem(cls, problem, prior, who: str = "this sampler", max_dense_dim: int = MAX_DENSE_DIM):
        """Decompose the problem's operator (class docstring); clear errors for unusable problems."""
        cls.check_problem(problem, who)
        fm = problem.forward_model
        f64 = torch.float64
        y = problem.y.to(f64).reshape(-1)
        identity_map = type(prior).to_physical is Prior.to_physical
        with torch.no_grad():
            if identity_map and callable(getattr(fm, "svd", None)):
                t0 = time.perf_counter()
                U, s, Vh = (t.to(f64) for t in fm.svd())
                seconds, reused = time.perf_counter() - t0, False
                b = torch.zeros_like(y)
                rel = 1e-12
            else:
                d = math.prod(prior.shape)
                if d > max_dense_dim:
                    raise SamplerConfigError(f"{who} needs the operator's SVD: {type(fm).__name__} has no svd() and "
                                             f"{d} inputs exceed the dense limit of {max_dense_dim}")
                dev = prior.device
                if y.numel() * d > MAX_DENSE_ENTRIES:
                    return cls._matrix_free(problem, prior, y)

                def dense():
                    zero = prior.to_physical(torch.zeros(1, *prior.shape, dtype=prior.dtype, device=dev))
                    b = fm(zero).to(f64).reshape(-1)
                    eye = torch.eye(d, dtype=prior.dtype, device=dev).reshape(d, *prior.shape)
                    A = (fm(prior.to_physical(eye)).to(f64).reshape(d, -1) - b).T
                    return (*thin_svd(A), b)

                (U, s, Vh, rel, b), seconds, reused = cached_decomposition(
                    ("dense", str(dev), *_fingerprint(fm, prior, prior.shape)), dense)
        keep = s > rel * float(s.max()) if s.numel() else s > 0
        U, s, Vh = U[:, keep], s[keep], Vh[keep]
        r = y - b
        y_bar = U.T @ r
        perp = r - U @ y_bar
        n_perp = y.numel() - int(keep.sum())
        sy = float(problem.noise.sigma)
        log_perp = _log_perp(float(perp @ perp), n_perp, sy)
        dt = prior.dtype
        return cls(U.to(dt), s.to(dt), Vh.to(dt), y_bar.to(dt), sy, log_perp, prior.shape,
                   decomposition_s=seconds, decomposition_reused=reused)

    @classmethod
    def _matrix_free(cls, problem, prior, y: torch.Tensor):
        """The basis of ``L x = F(to_physical(x)) - F(to_physical(0))`` from the operator's ``adjoint``
        (:func:`gram_eigh`), in float64 on the CPU, on a float64 copy of the forward model (the problem's
        own is left as it is). With ``T`` the linear part of ``to_physical``, ``L^T w = T^T F^T w`` (``T^T``
        by autograd through ``to_physical``), ``y_bar = U^T r = diag(1/s) Vh L^T r`` and
        ``||r - U y_bar||^2 = ||r||^2 - ||y_bar||^2`` for ``r = y - F(to_physical(0))``. ``U`` is ``None``."""
        f64 = torch.float64
        fm = problem.forward_model
        if isinstance(fm, torch.nn.Module):
            fm = copy.deepcopy(fm).to(device="cpu", dtype=f64)
        shape = tuple(prior.shape)
        z0 = prior.to_physical(torch.zeros(1, *shape, dtype=f64))

        def t_transpose(u):  # T^T u = grad_x <to_physical(x), u>
            with torch.enable_grad():
                x = torch.zeros(len(u), *shape, dtype=f64, requires_grad=True)
                return torch.autograd.grad((prior.to_physical(x) * u).sum(), x)[0]

        def normal(x):  # L^T L x = T^T F^T F (T x), T x = to_physical(x) - to_physical(0)
            return t_transpose(fm.adjoint(fm(prior.to_physical(x) - z0)).to(f64))

        (s, Vh), seconds, reused = cached_decomposition(("matrix-free", *_fingerprint(fm, prior, shape)),
                                                        lambda: gram_eigh(normal, shape))
        r = y.cpu() - fm(z0).to(f64).reshape(-1)
        y_bar = (Vh @ t_transpose(fm.adjoint(r.reshape(1, *fm.output_shape)).to(f64)).reshape(-1)) / s
        perp2 = max(float(r @ r) - float(y_bar @ y_bar), 0.0)
        n_perp = y.numel() - s.numel()
        sy = float(problem.noise.sigma)
        log_perp = _log_perp(perp2, n_perp, sy)
        dt, dev = prior.dtype, prior.device
        return cls(None, s.to(dev, dt), Vh.to(dev, dt), y_bar.to(dev, dt), sy, log_perp, shape,
                   decomposition_s=seconds, decomposition_reused=reused)

    @property
    def rank(self) -> int:
        """Number r of retained singular values."""
        return self.s.numel()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``z = Vh x`` for a batch ``(B, *shape)`` -> ``(B, r)``."""
        return x.reshape(x.shape[0], -1) @ self.Vh.T

    def log_twist(self, z: torch.Tensor, var: torch.Tensor, active: torch.Tensor | None = None, *,
                  y: torch.Tensor | None = None, gain: torch.Tensor | None = None) -> torch.Tensor:
        """``sum_{i active} log N(y_bar_i; s_i z_i, var_i) + log_perp`` for ``z`` of shape ``(B, r)`` -> (B,).

        ``y`` ((r,) or per particle (B, r)) and ``gain`` (r,) replace ``y_bar`` and ``s`` when given
        (MCGdiff's bridge observations between two levels).
        """
        y = self.y_bar if y is None else y
        gain = self.s if gain is None else gain
        terms = -0.5 * (y - gain * z) ** 2 / var - 0.5 * (torch.log(var) + _LOG_2PI)
        if active is not None:
            terms = torch.where(active, terms, torch.zeros_like(terms))
        return terms.sum(1) + self.log_perp

    def tilted_sample(self, mean: torch.Tensor, v: float, var: torch.Tensor, active: torch.Tensor | None,
                      generator, *, y: torch.Tensor | None = None, gain: torch.Tensor | None = None,
                      z_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``N(x'; mean, v I) * prod_{i active} N(y_bar_i; s_i z'_i, var_i)`` exactly (class docstring).

        Returns ``(x', log normaliser)``; ``log_perp`` is included in the normaliser. ``var_i = 0``
        pins ``z'_i = y_bar_i / s_i``. ``y`` / ``gain`` replace ``y_bar`` / ``s`` as in :meth:`log_twist`;
        ``z_mean`` is ``Vh mean`` when the caller has it. A projection of a few particles reads all of ``Vh``
        (memory-bound), so the draw makes two passes over it, ``Vh noise`` (``Vh x = Vh mean + sqrt(v) Vh
        noise``) and the back-projection, and no more.
        """
        y = self.y_bar if y is None else y
        g = self.s if gain is None else gain
        noise = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        sd = math.sqrt(max(v, 0.0))
        x = mean + sd * noise
        zm = self.project(mean) if z_mean is None else z_mean
        zx = zm + sd * self.project(noise)
        total = g**2 * v + var
        k = v * g / total
        post_mean = zm + k * (y - g * zm)
        post_sd = torch.sqrt((v * var / total).clamp_min(0.0))
        zn = torch.randn(zm.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        z_new = post_mean + post_sd * zn
        if active is not None:
            z_new = torch.where(active, z_new, zx)
        flat = x.reshape(x.shape[0], -1) + (z_new - zx) @ self.Vh
        return flat.reshape(mean.shape), self.log_twist(zm, total, active, y=y, gain=g)
