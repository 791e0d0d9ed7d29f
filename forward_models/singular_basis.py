"""Singular bases of linear operators as operations, not matrices: ``A = U diag(s) Vh`` without forming ``Vh``.

A sampler that works in an operator's singular basis (MCGdiff, AFES, TDS's linear twist, DDRM) needs three
maps and the singular values: ``z = Vh x`` (:meth:`SingularBasis.project`), ``x = Vh^T z``
(:meth:`SingularBasis.lift`) and ``y_bar = U^T y`` (:meth:`SingularBasis.coefficients`). A dense ``Vh`` costs
``8 r d`` bytes and ``r d`` flops per particle, which caps it at a few thousand unknowns; structured operators
have cheaper bases:

- :class:`DenseBasis`: explicit ``Vh`` (and ``U``, or the measurement-side map), any operator small enough.
- :class:`RowBasis`: Cartesian MRI with whole phase-encode columns sampled (single- or multi-coil). The
  orthonormal inverse DFT along the fully sampled axis splits ``A`` into one small block ``E_h`` per image row
  (``(C n) x W``, ``n`` sampled columns, ``C`` coils); the basis is their SVDs, ``H`` blocks of at most ``W``
  vectors each, ``O(H W^2)`` memory instead of ``O(H^2 W^2)`` (Pruessmann et al., MRM 42:952, 1999). Real
  images (:class:`~forward_models.mri.RealImageMRI`) use the SVDs of the real blocks ``[Re E_h; Im E_h]``;
  complex images those of ``E_h``, each complex singular triplet ``(u, s, v)`` giving the two real ones
  ``(Re, Im)`` with the same ``s`` (``v`` and ``i v`` are orthonormal in the real inner product).
- :class:`FourierBasis`: single-coil MRI on complex images with any mask, in closed form: ``A = M F`` with
  ``F`` unitary, so ``s = 1`` on every sampled k-space entry and ``Vh x`` is the sampled part of ``F x``.
- :func:`randomized_basis`: any operator with an adjoint, truncated to a given rank by the randomized range
  finder with power iterations (Halko, Martinsson & Tropp, SIAM Review 53:217, 2011, algs. 4.4 and 5.1). The
  truncation is recorded (:attr:`SingularBasis.truncation`): the rank kept, the first dropped singular value
  (as estimated) and the fraction of ``||A||_F^2`` kept.

Every basis here has orthonormal rows ``Vh`` (``Vh Vh^T = I``) and satisfies ``U^T A x = s * (Vh x)``.

Example::

    import torch
    from forward_models.mri import RealImageMRI, SingleCoilMRI
    op = RealImageMRI(SingleCoilMRI.cartesian(32, acceleration=4, seed=0))
    basis = op.singular_basis()                      # a RowBasis: 32 blocks of at most 32 vectors
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    z = basis.project(x.reshape(2, -1))              # (2, r)
    y_bar = basis.coefficients(op(x).reshape(2, -1)) # U^T A x
    assert torch.allclose(y_bar, basis.s * z, atol=1e-10)
"""

from __future__ import annotations

import math

import torch

__all__ = ["SingularBasis", "DenseBasis", "RowBasis", "FourierBasis", "randomized_basis", "basis_rank_budget",
           "EXACT_TRUNCATION", "MAX_BASIS_BYTES", "PROGRESS_MIN_ENTRIES"]

#: the :attr:`SingularBasis.truncation` record of a basis that keeps every resolved singular direction
EXACT_TRUNCATION = {"exact": True}

#: memory budget of a dense ``Vh`` in float64 (``8 r d`` bytes): a basis that would exceed it is truncated to
#: the largest rank that fits
MAX_BASIS_BYTES = 2**30


#: a randomized basis shows a progress bar when its test block (``l (d + m)`` entries) is at least this large
PROGRESS_MIN_ENTRIES = 50_000_000


def basis_rank_budget(d: int, m: int, budget: int | None = None) -> int:
    """Rank of a dense basis of an ``m x d`` operator within ``budget`` bytes (default :data:`MAX_BASIS_BYTES`):
    ``min(m, d)`` when ``8 d min(m, d)`` bytes fit, else the largest rank that fits (at least 1)."""
    budget = MAX_BASIS_BYTES if budget is None else int(budget)
    return max(1, min(int(m), int(d), budget // (8 * int(d))))


class SingularBasis:
    """``A = U diag(s) Vh`` as three maps on flattened batches (module docstring).

    Subclasses set ``s`` (``(r,)``, not necessarily sorted), ``input_size`` ``d`` and implement
    :meth:`project` ``(B, d) -> (B, r)``, :meth:`lift` ``(B, r) -> (B, d)``, :meth:`coefficients`
    ``(B, m) -> (B, r)`` and :meth:`to`. ``truncation`` is :data:`EXACT_TRUNCATION` or a record of what a
    truncated basis left out.
    """

    s: torch.Tensor
    input_size: int
    truncation: dict = EXACT_TRUNCATION
    #: -1 when ``U``'s signs are flipped (:meth:`scaled` by a negative factor)
    sign: float = 1.0

    @property
    def rank(self) -> int:
        """Number of singular directions kept."""
        return int(self.s.numel())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``Vh x`` of a batch ``(B, d)``."""
        raise NotImplementedError

    def lift(self, z: torch.Tensor) -> torch.Tensor:
        """``Vh^T z`` of a batch ``(B, r)``."""
        raise NotImplementedError

    def coefficients(self, y: torch.Tensor) -> torch.Tensor:
        """``U^T y`` of a batch of flattened measurements ``(B, m)``."""
        raise NotImplementedError

    def to(self, device=None, dtype=None) -> SingularBasis:
        """A copy on ``device`` in the real dtype ``dtype``."""
        raise NotImplementedError

    def matrix(self) -> torch.Tensor:
        """The dense ``Vh`` ``(r, d)``, by lifting the identity (small bases; tests)."""
        eye = torch.eye(self.rank, dtype=self.s.dtype, device=self.s.device)
        return self.lift(eye)

    def scaled(self, scale: float) -> SingularBasis:
        """The basis of ``scale * A``: singular values ``|scale| s``, ``U`` multiplied by ``sign(scale)``."""
        out = self._copy()
        out.s = abs(float(scale)) * self.s
        out.sign = self.sign * math.copysign(1.0, float(scale))
        return out

    def _copy(self) -> SingularBasis:
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        return out


class DenseBasis(SingularBasis):
    """Explicit ``Vh`` ``(r, d)`` and ``U`` ``(m, r)``; ``U`` may be ``None`` when a callable ``coefficients_fn``
    gives ``U^T y`` instead (a matrix-free decomposition).

    Example::

        import torch
        from forward_models.singular_basis import DenseBasis
        U, s, Vh = torch.linalg.svd(torch.randn(3, 5, dtype=torch.float64), full_matrices=False)
        basis = DenseBasis(U, s, Vh)
    """

    def __init__(self, U, s, Vh, *, coefficients_fn=None, truncation: dict | None = None):
        self.U, self.s, self.Vh = U, s, Vh
        self.input_size = int(Vh.shape[1])
        self.coefficients_fn = coefficients_fn
        self.truncation = dict(truncation) if truncation else EXACT_TRUNCATION

    @classmethod
    def from_svd(cls, U, s, Vh, rel: float = 1e-12) -> DenseBasis:
        """The basis of a thin SVD, singular values below ``rel s_max`` dropped (not resolved)."""
        keep = s > rel * float(s.max()) if s.numel() else s > 0
        return cls(U[:, keep], s[keep], Vh[keep])

    def project(self, x):
        """``x Vh^T``."""
        return x @ self.Vh.T

    def lift(self, z):
        """``z Vh``."""
        return z @ self.Vh

    def coefficients(self, y):
        """``y U`` (or the matrix-free ``coefficients_fn``), times the sign of a :meth:`scaled` basis."""
        c = y @ self.U.to(y.dtype) if self.U is not None else self.coefficients_fn(y)
        return self.sign * c

    def matrix(self):
        """The stored ``Vh``."""
        return self.Vh

    def to(self, device=None, dtype=None):
        """A copy with ``U``, ``s`` and ``Vh`` moved (the coefficients keep their own precision)."""
        out = self._copy()
        out.s, out.Vh = self.s.to(device, dtype), self.Vh.to(device, dtype)
        return out


class RowBasis(SingularBasis):
    """Per-row blocks of a column-masked Cartesian MRI operator (module docstring).

    ``operator`` is the :class:`~forward_models.mri._CartesianMRI` whose ``_row_svd(real)`` gives the blocks'
    factors ``(K, U, s, Vh)`` (``U`` ``(H, M, R)``, ``s`` ``(H, R)``, ``Vh`` ``(H, R, W)``); ``real=True`` for
    real images ``(1, H, W)``, ``False`` for complex ones ``(2, H, W)``. Singular values below ``1e-12`` of the
    largest are dropped (not resolved in float64).
    """

    def __init__(self, operator, real: bool):
        self.operator, self.real = operator, bool(real)
        K, U, s, Vh = operator._row_svd(real=self.real)
        H, R, W = Vh.shape
        self.K, self.U, self.H, self.R, self.W = K, U, H, R, W
        keep = s > 1e-12 * float(s.max())
        if not self.real:  # a complex triplet gives two real directions: (Re, Im) with the same s
            keep = torch.stack([keep, keep], -1)  # (H, R, 2)
            s = torch.stack([s, s], -1)
        self.index = torch.nonzero(keep.reshape(-1)).flatten()
        self.s = s.reshape(-1)[self.index].to(torch.float64)
        self.Vh = Vh
        self.input_size = (1 if self.real else 2) * H * W
        self.truncation = EXACT_TRUNCATION

    def _dtype(self):
        if self.real:
            return self.Vh.dtype
        return torch.float64 if self.Vh.dtype == torch.complex128 else torch.float32

    def project(self, x):
        """Per row ``Vh_h x_h`` (``(Re, Im)`` pairs for complex images), the kept coordinates."""
        B = x.shape[0]
        if self.real:
            z = torch.einsum("hrw,bhw->bhr", self.Vh, x.reshape(B, self.H, self.W).to(self.Vh.dtype))
        else:
            xr = x.reshape(B, 2, self.H, self.W).to(self._dtype())
            z = torch.einsum("hrw,bhw->bhr", self.Vh, torch.complex(xr[:, 0], xr[:, 1]))
            z = torch.view_as_real(z)
        return z.reshape(B, -1)[:, self.index].to(x.dtype)

    def lift(self, z):
        """Per row ``Vh_h^T z_h`` (``Vh_h^H`` of the complex coordinates for complex images)."""
        B = z.shape[0]
        width = self.R * (1 if self.real else 2)
        full = torch.zeros(B, self.H * width, dtype=self._dtype(), device=z.device)
        full[:, self.index] = z.to(full.dtype)
        if self.real:
            x = torch.einsum("hrw,bhr->bhw", self.Vh, full.reshape(B, self.H, self.R))
            return x.reshape(B, -1).to(z.dtype)
        zc = torch.view_as_complex(full.reshape(B, self.H, self.R, 2).contiguous())
        x = torch.einsum("hrw,bhr->bhw", self.Vh.conj(), zc)
        return torch.stack([x.real, x.imag], 1).reshape(B, -1).to(z.dtype)

    def coefficients(self, y):
        """Per row ``U_h^T b_h`` with ``b_h`` the row data of the operator's orthonormal 1-D inverse DFT."""
        B = y.shape[0]
        yy = y.reshape(B, *self.operator.output_shape).to(torch.float64)
        b = self.operator._row_data(yy, self.K)  # (B, H, C n) complex128
        U = self.U.to(torch.complex128 if not self.real else torch.float64)
        if self.real:
            c = torch.einsum("hmr,bhm->bhr", U, torch.cat([b.real, b.imag], -1))
        else:
            c = torch.view_as_real(torch.einsum("hmr,bhm->bhr", U.conj(), b))
        return self.sign * c.reshape(B, -1)[:, self.index]

    def to(self, device=None, dtype=None):
        """A copy whose ``Vh`` is on ``device`` in ``dtype`` (complex of that precision for complex images)."""
        out = self._copy()
        vh_dtype = dtype
        if dtype is not None and not self.real:
            vh_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        out.Vh = self.Vh.to(device, vh_dtype)
        out.index = self.index.to(device)
        out.s = self.s.to(device, dtype)
        return out


class FourierBasis(SingularBasis):
    """Single-coil MRI ``A = M F`` on complex images ``(2, H, W)``, any mask: ``F`` is unitary, so the basis is
    the sampled Fourier modes, ``s = 1``, ``Vh x = (Re, Im)`` of the sampled entries of ``F x`` and
    ``U^T y = (Re, Im)`` of the sampled entries of ``y`` (module docstring)."""

    def __init__(self, operator):
        from forward_models.mri import fft2c, ifft2c  # forward_models.mri imports this module

        self._fft, self._ifft = fft2c, ifft2c
        self.operator = operator
        self.H, self.W = operator.img_size
        self.where = torch.nonzero(operator.mask.reshape(-1) > 0).flatten()
        self.s = torch.ones(2 * self.where.numel(), dtype=torch.float64, device=operator.mask.device)
        self.input_size = 2 * self.H * self.W
        self.truncation = EXACT_TRUNCATION

    def _pairs(self, k):  # (B, H, W) complex -> (B, 2 n) real, sampled entries
        return torch.view_as_real(k.reshape(k.shape[0], -1)[:, self.where]).reshape(k.shape[0], -1)

    def project(self, x):
        """``(Re, Im)`` of the sampled entries of ``F x``."""
        B = x.shape[0]
        xr = x.reshape(B, 2, self.H, self.W)
        return self._pairs(self._fft(torch.complex(xr[:, 0], xr[:, 1])))

    def lift(self, z):
        """``F^H`` of the sampled entries set to ``z`` (zero elsewhere)."""
        B = z.shape[0]
        ctype = torch.complex128 if z.dtype == torch.float64 else torch.complex64
        k = torch.zeros(B, self.H * self.W, dtype=ctype, device=z.device)
        k[:, self.where] = torch.view_as_complex(z.reshape(B, -1, 2).contiguous())
        x = self._ifft(k.reshape(B, self.H, self.W))
        return torch.stack([x.real, x.imag], 1).reshape(B, -1)

    def coefficients(self, y):
        """``(Re, Im)`` of the sampled entries of ``y``."""
        B = y.shape[0]
        yr = y.reshape(B, 2, self.H, self.W).to(torch.float64)
        return self.sign * self._pairs(torch.complex(yr[:, 0], yr[:, 1]))

    def to(self, device=None, dtype=None):
        """A copy on ``device`` (the FFT runs in the input's precision)."""
        out = self._copy()
        out.where = self.where.to(device)
        out.s = self.s.to(device, dtype)
        return out


def randomized_basis(forward, adjoint, input_size: int, output_size: int, rank: int, *, oversample: int = 10,
                     power_iterations: int = 2, seed: int = 0, chunk: int = 256) -> DenseBasis:
    """Truncated singular basis of ``A`` (``m x d``) from products with ``A`` and ``A^T`` alone.

    ``forward(X)`` maps a batch ``(k, d)`` to ``A X`` ``(k, m)`` and ``adjoint(Y)`` ``(k, m)`` to ``A^T Y``
    ``(k, d)``, both float64. With ``l = rank + oversample`` Gaussian test vectors ``Omega``: ``Q = orth(A Omega)``,
    ``power_iterations`` times ``Q = orth(A orth(A^T Q))``, then the SVD of the small ``B = Q^T A`` gives
    ``A ~ (Q U_B) diag(s) Vh`` (Halko, Martinsson & Tropp 2011, algs. 4.4 and 5.1), truncated to ``rank``.
    The truncation record holds the rank kept, ``s_next`` (the estimate of the first dropped singular value,
    from the oversampled ones; 0 when ``rank = min(m, d)``), and ``energy_kept``, the fraction of
    ``||A||_F^2`` the kept directions carry (``||A||_F^2`` estimated as ``||A Omega||_F^2 / l``, unbiased).
    Products are taken ``chunk`` vectors at a time; a large basis (:data:`PROGRESS_MIN_ENTRIES`) shows a progress
    bar over its stages.

    Example::

        import torch
        from forward_models.singular_basis import randomized_basis
        A = torch.randn(40, 60, dtype=torch.float64)
        basis = randomized_basis(lambda X: X @ A.T, lambda Y: Y @ A, 60, 40, rank=40)
    """
    f64 = torch.float64
    full = min(int(input_size), int(output_size))
    rank = max(1, min(int(rank), full))
    width = min(rank + int(oversample), full)
    g = torch.Generator().manual_seed(int(seed))

    def chunked(fn, X):
        return torch.cat([fn(X[i:i + chunk]).to(f64) for i in range(0, len(X), chunk)])

    from tqdm.auto import tqdm

    stages = 3 + 2 * int(power_iterations)
    quiet = width * (int(input_size) + int(output_size)) < PROGRESS_MIN_ENTRIES
    with tqdm(total=stages, desc=f"randomized basis (rank {rank})", disable=quiet, leave=False) as bar:
        omega = torch.randn(width, int(input_size), generator=g, dtype=f64)
        Y = chunked(forward, omega)  # (l, m): rows are A omega_i
        frob2 = float((Y**2).sum()) / width
        Q = torch.linalg.qr(Y.T)[0].T  # (l, m), orthonormal rows
        bar.update()
        for _ in range(int(power_iterations)):
            Z = torch.linalg.qr(chunked(adjoint, Q).T)[0].T  # (l, d)
            bar.update()
            Q = torch.linalg.qr(chunked(forward, Z).T)[0].T
            bar.update()
        Bt = chunked(adjoint, Q)  # (l, d): rows of B = Q A are A^T q_i
        bar.update()
        Ub, s, Vh = torch.linalg.svd(Bt, full_matrices=False)  # B = Ub s Vh with B (l, d)
        bar.update()
    U = Q.T @ Ub  # (m, l)
    s_next = float(s[rank]) if rank < len(s) else 0.0
    U, s, Vh = U[:, :rank].contiguous(), s[:rank].contiguous(), Vh[:rank].contiguous()
    kept = float((s**2).sum())
    truncation = {"exact": rank >= full, "rank": rank, "full_rank_bound": full, "s_max": float(s[0]),
                  "s_last": float(s[-1]), "s_next": s_next,
                  "energy_kept": min(1.0, kept / frob2) if frob2 > 0 else 1.0}
    return DenseBasis(U, s, Vh, truncation=truncation)
