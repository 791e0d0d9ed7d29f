"""The likelihood of a linear-Gaussian problem in the operator's singular basis (:class:`LinearGaussian`).

For ``y = A x + b + sigma_y e`` with ``A = U diag(s) Vh``, ``z = Vh x`` and ``y_bar = U^T (y - b)``, the
likelihood factorises over the r singular directions, and a Gaussian kernel tilted by a per-coordinate
Gaussian potential has closed-form samples and normaliser: the building block of the exact-linear SMC
samplers (:mod:`samplers.smc.linear_twist`), of TDS's linear twist and of DDRM. The bases come from
:mod:`forward_models.singular_basis` (structured and truncated ones) and :mod:`forward_models.linalg` (dense ones).
"""

from __future__ import annotations

import copy
import math
import warnings

import torch

from forward_models.linalg import cached_decomposition, gram_eigh, operator_fingerprint, thin_svd
from forward_models.noise import Gaussian
from forward_models.singular_basis import (
    MAX_BASIS_BYTES,
    DenseBasis,
    SingularBasis,
    basis_rank_budget,
    randomized_basis,
)
from priors.base import Prior
from samplers.errors import SamplerConfigError

# MAX_BASIS_BYTES and basis_rank_budget are re-exported from forward_models.singular_basis
__all__ = ["LinearGaussian", "MAX_DENSE_DIM", "MAX_DENSE_ENTRIES", "MAX_BASIS_BYTES", "BasisTruncationWarning",
           "TRUNCATION_WARN_NATS", "basis_rank_budget"]

_LOG_2PI = math.log(2.0 * math.pi)

#: largest flattened input size for which a dense operator matrix is built and decomposed
MAX_DENSE_DIM = 8192

#: largest dense operator (``prod(output) * prod(input)`` entries) :class:`LinearGaussian` builds; larger
#: operators (multi-coil MRI: 65536 x 4096) are decomposed matrix-free through their adjoint (``gram_eigh``)
MAX_DENSE_ENTRIES = 40_000_000


class BasisTruncationWarning(UserWarning):
    """A truncated singular basis dropped directions that may carry information (:data:`TRUNCATION_WARN_NATS`)."""


#: a truncated basis warns when the information its dropped directions may carry exceeds this many nats: at most
#: ``n_dropped / 2 log(1 + (s_next / sigma_y)^2)``, the expected information of ``n_dropped`` directions of singular
#: value ``s_next`` about a unit-variance model-space prior (the Gaussian-mixture study in docs/scaling.md measured
#: the target's shift against this bound)
TRUNCATION_WARN_NATS = 0.5


def _dropped_information(basis, sigma_y: float) -> dict:
    """The truncation record with, in the prior's model space, ``snr_first_dropped = s_next / sigma_y`` and
    ``information_dropped_bound = n_dropped / 2 log(1 + snr^2)`` nats (``n_dropped`` from ``min(m, d)``)."""
    t = dict(basis.truncation)
    s_next = t["s_next"] * float(basis.s.max()) / t["s_max"]  # in the model space of a scaled basis
    snr = s_next / sigma_y
    t.update(snr_first_dropped=snr,
             information_dropped_bound=0.5 * (t["full_rank_bound"] - t["rank"]) * math.log1p(snr**2))
    return t


def _affine_scale(prior) -> float | None:
    """``scale`` when the prior's ``to_physical`` is ``offset + scale * x`` with scalars (the identity and every
    :class:`~priors.normalisation.Normalisation`), checked on probes; ``None`` otherwise."""
    if type(prior).to_physical is Prior.to_physical:
        return 1.0
    f64 = torch.float64
    probe = torch.randn(2, *prior.shape, generator=torch.Generator().manual_seed(7), dtype=f64)
    try:
        with torch.no_grad():
            zero = prior.to_physical(torch.zeros(1, *prior.shape, dtype=f64))
            one = prior.to_physical(torch.ones(1, *prior.shape, dtype=f64))
            out = prior.to_physical(probe)
    except (RuntimeError, TypeError):
        return None
    offset, scale = float(zero.flatten()[0]), float((one - zero).flatten()[0])
    ok = (scale != 0 and torch.allclose(zero, torch.full_like(zero, offset))
          and torch.allclose(one - zero, torch.full_like(zero, scale))
          and torch.allclose(out, offset + scale * probe, rtol=1e-10, atol=1e-12))
    return scale if ok else None


def _has_structure(fm) -> bool:
    """Whether the operator may offer a structured singular basis (``singular_basis()``) or an ``svd()``."""
    return callable(getattr(fm, "singular_basis", None)) or callable(getattr(fm, "svd", None))


def _structured_basis(fm) -> SingularBasis | None:
    """The operator's own basis: ``singular_basis()`` (``None`` where its structure does not apply), or a
    :class:`DenseBasis` of its ``svd()``."""
    if callable(getattr(fm, "singular_basis", None)):
        return fm.singular_basis()
    return DenseBasis.from_svd(*(t.to(torch.float64) for t in fm.svd()))


def _transpose_of(prior, shape):
    """``u -> T^T u`` for the linear part ``T`` of ``prior.to_physical`` (autograd), float64 batches."""

    def t_transpose(u):  # T^T u = grad_x <to_physical(x), u>
        with torch.enable_grad():
            x = torch.zeros(len(u), *shape, dtype=torch.float64, requires_grad=True)
            return torch.autograd.grad((prior.to_physical(x) * u).sum(), x)[0]

    return t_transpose


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

    Built by :meth:`from_problem`, in this order:

    1. the operator's structured basis when the prior's ``to_physical`` is affine with scalars (the identity or a
       :class:`~priors.normalisation.Normalisation`, so the model-space operator is ``scale * A``):
       ``singular_basis()`` (:mod:`forward_models.singular_basis`: per-row blocks for column-masked Cartesian
       MRI, the Fourier modes of single-coil MRI, the range basis of parallel-beam CT) or ``svd()``;
    2. a dense matrix of ``x -> F(to_physical(x)) - b`` (``b = F(to_physical(0))``; ``to_physical`` affine, as
       normalisations are) for at most ``MAX_DENSE_DIM`` inputs, decomposed by :func:`thin_svd`, or matrix-free
       from its ``adjoint`` by :func:`gram_eigh` when that matrix would exceed ``MAX_DENSE_ENTRIES`` entries;
    3. beyond, a basis truncated to the rank that fits :data:`MAX_BASIS_BYTES`, from products with the operator
       and its adjoint (:func:`~forward_models.singular_basis.randomized_basis`); the truncation is reported
       (:attr:`truncation`, with a bound on the information the dropped directions may carry) and a
       :class:`BasisTruncationWarning` is raised when that bound exceeds :data:`TRUNCATION_WARN_NATS`.

    Every decomposition is kept for the next run on the same operator (and prior)
    (:func:`forward_models.linalg.cached_decomposition`, keyed by :func:`forward_models.linalg.operator_fingerprint`).
    """

    def __init__(self, basis: SingularBasis, y_bar, sigma_y: float, log_perp: float, input_shape, *,
                 decomposition_s: float = 0.0, decomposition_reused: bool = False):
        self.basis, self.s, self.y_bar = basis, basis.s, y_bar
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
    def from_problem(cls, problem, prior, who: str = "this sampler", max_dense_dim: int | None = None):
        """Decompose the problem's operator (class docstring; ``max_dense_dim`` defaults to :data:`MAX_DENSE_DIM`);
        clear errors for unusable problems."""
        cls.check_problem(problem, who)
        max_dense_dim = MAX_DENSE_DIM if max_dense_dim is None else int(max_dense_dim)
        fm = problem.forward_model
        d = math.prod(prior.shape)
        scale = _affine_scale(prior)
        with torch.no_grad():
            basis = None
            if scale is not None and _has_structure(fm):
                basis, seconds, reused = cached_decomposition(
                    ("structured", *operator_fingerprint(fm)), lambda: _structured_basis(fm))
            if basis is not None:
                basis = basis.scaled(scale)
            elif d <= max_dense_dim:
                y = problem.y.to(torch.float64).reshape(-1)
                if y.numel() * d > MAX_DENSE_ENTRIES:
                    return cls._matrix_free(problem, prior, y)
                basis, seconds, reused = cls._dense(fm, prior)
            elif callable(getattr(fm, "adjoint", None)):
                basis, seconds, reused = cls._randomized(fm, prior)
            else:
                raise SamplerConfigError(f"{who} needs the operator's singular basis: {type(fm).__name__} has no "
                                         f"structured one, no adjoint, and {d} inputs exceed the dense limit of "
                                         f"{max_dense_dim}")
            return cls._from_basis(problem, prior, basis, seconds, reused, who)

    @classmethod
    def _from_basis(cls, problem, prior, basis: SingularBasis, seconds: float, reused: bool, who: str):
        """``y_bar = U^T (y - b)`` with ``b = F(to_physical(0))``, the out-of-range term, and the basis moved to
        the prior's device and dtype; warns when a truncated basis dropped directions the data resolve."""
        f64 = torch.float64
        fm = problem.forward_model
        zero = prior.to_physical(torch.zeros(1, *prior.shape, dtype=prior.dtype, device=prior.device))
        r = problem.y.to(f64).reshape(1, -1) - fm(zero.to(problem.y.dtype)).to(f64).reshape(1, -1)
        r = r.to(basis.s.device)
        y_bar = basis.coefficients(r)[0].to(f64)
        perp2 = max(float((r**2).sum()) - float(y_bar @ y_bar), 0.0)
        sy = float(problem.noise.sigma)
        log_perp = _log_perp(perp2, r.numel() - basis.rank, sy)
        dt, dev = prior.dtype, prior.device
        moved = basis.to(dev, dt)  # a copy: the cached basis keeps its own record
        if not basis.truncation.get("exact", True):
            moved.truncation = t = _dropped_information(basis, sy)
            if t["information_dropped_bound"] > TRUNCATION_WARN_NATS:
                warnings.warn(f"{who}: the operator's singular basis was truncated to rank {t['rank']} (memory "
                              f"budget); the {t['full_rank_bound'] - t['rank']} dropped directions may carry up to "
                              f"{t['information_dropped_bound']:.3g} nats (first dropped: signal-to-noise "
                              f"{t['snr_first_dropped']:.3g}): the posterior ignores information the data hold",
                              BasisTruncationWarning, stacklevel=3)
        return cls(moved, y_bar.to(dev, dt), sy, log_perp, prior.shape,
                   decomposition_s=seconds, decomposition_reused=reused)

    @classmethod
    def _dense(cls, fm, prior):
        """The dense matrix of ``x -> F(to_physical(x)) - F(to_physical(0))`` and its :func:`thin_svd`
        (``MAX_DENSE_DIM`` inputs at most), cached."""
        f64 = torch.float64
        dev = prior.device
        d = math.prod(prior.shape)

        def dense():
            zero = prior.to_physical(torch.zeros(1, *prior.shape, dtype=prior.dtype, device=dev))
            b = fm(zero).to(f64).reshape(-1)
            eye = torch.eye(d, dtype=prior.dtype, device=dev).reshape(d, *prior.shape)
            A = (fm(prior.to_physical(eye)).to(f64).reshape(d, -1) - b).T
            U, s, Vh, rel = thin_svd(A)
            return DenseBasis.from_svd(U, s, Vh, rel)

        return cached_decomposition(("dense", str(dev), *_fingerprint(fm, prior, prior.shape)), dense)

    @classmethod
    def _randomized(cls, fm, prior):
        """A truncated basis of ``L x = F(to_physical(x)) - F(to_physical(0))`` from products with ``F`` and its
        adjoint (:func:`~forward_models.singular_basis.randomized_basis`), rank within :data:`MAX_BASIS_BYTES`."""
        f64 = torch.float64
        fm64 = copy.deepcopy(fm).to(device="cpu", dtype=f64) if isinstance(fm, torch.nn.Module) else fm
        shape = tuple(prior.shape)
        d, m = math.prod(shape), math.prod(fm.output_shape)
        z0 = prior.to_physical(torch.zeros(1, *shape, dtype=f64))
        t_transpose = _transpose_of(prior, shape)
        rank = basis_rank_budget(d, m)

        def forward(X):
            return (fm64(prior.to_physical(X.reshape(-1, *shape)) - z0)).reshape(len(X), -1)

        def adjoint(Y):
            return t_transpose(fm64.adjoint(Y.reshape(-1, *fm.output_shape)).to(f64)).reshape(len(Y), -1)

        return cached_decomposition(("randomized", rank, *_fingerprint(fm, prior, shape)),
                                    lambda: randomized_basis(forward, adjoint, d, m, rank))

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
        t_transpose = _transpose_of(prior, shape)

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
        basis = DenseBasis(None, s, Vh).to(dev, dt)
        return cls(basis, y_bar.to(dev, dt), sy, log_perp, shape, decomposition_s=seconds,
                   decomposition_reused=reused)

    @property
    def U(self):
        """The dense ``U`` of a dense basis with one, else ``None``."""
        return getattr(self.basis, "U", None) if isinstance(self.basis, DenseBasis) else None

    @property
    def Vh(self) -> torch.Tensor:
        """The dense ``Vh`` ``(r, d)`` (built by lifting the identity for a structured basis)."""
        return self.basis.matrix()

    def diagnostics(self) -> dict:
        """The basis in a posterior's diagnostics: ``basis_s`` (seconds its decomposition took), ``basis_reused``
        (taken from the cache, so excluded from ``wall_time_s``), ``basis_kind`` (its class), ``basis_rank`` and,
        for a truncated basis, ``basis_truncation``."""
        out = {"basis_s": self.decomposition_s, "basis_reused": self.decomposition_reused,
               "basis_kind": type(self.basis).__name__, "basis_rank": self.rank}
        if not self.truncation.get("exact", True):
            out["basis_truncation"] = dict(self.truncation)
        return out

    @property
    def truncation(self) -> dict:
        """The basis's truncation record (``{"exact": True}`` unless it was truncated)."""
        return self.basis.truncation

    @property
    def rank(self) -> int:
        """Number r of retained singular values."""
        return self.s.numel()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``z = Vh x`` for a batch ``(B, *shape)`` -> ``(B, r)``."""
        return self.basis.project(x.reshape(x.shape[0], -1))

    def lift(self, z: torch.Tensor) -> torch.Tensor:
        """``Vh^T z`` for ``z`` of shape ``(B, r)`` -> ``(B, d)`` (flattened)."""
        return self.basis.lift(z)

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
        flat = x.reshape(x.shape[0], -1) + self.lift(z_new - zx)
        return flat.reshape(mean.shape), self.log_twist(zm, total, active, y=y, gain=g)
