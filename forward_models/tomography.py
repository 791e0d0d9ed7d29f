"""Parallel-beam (sparse-view) computed tomography: the discrete Radon transform as a sparse matrix.

Maths. The Radon transform of an attenuation image ``mu(r)`` is the set of its line integrals

    ``(R mu)(theta, s) = integral mu(s e_theta + t e_theta_perp) dt``,
    ``e_theta = (cos theta, -sin theta)``, ``e_theta_perp = (sin theta, cos theta)``

(Kak & Slaney, *Principles of Computerized Tomographic Imaging*, IEEE Press 1988, ch. 3;
Natterer, *The Mathematics of Computerized Tomography*, 1986). By Beer-Lambert, ``R mu`` is
``-log(I / I_0)`` of the transmitted X-ray intensity. Sparse-view CT measures few angles ``theta``.

Discretisation (identical to deepinv's ``Tomography(circle=False)`` parallel-beam geometry, to
1e-13 in float64, but stored as an explicit sparse matrix): the ``W x W`` image is zero-padded to
``N_d = ceil(sqrt(2) W)`` so every ray through it is covered; for each angle the padded
image is sampled by bilinear interpolation on a rotated ``N_d x N_d`` grid of unit spacing, and the
samples are summed along the ray direction. Hence

    ``y[a, j] = pixel_size * sum_i  bilinear(mu, R_theta_a (s_j, t_i))``,

a linear map ``A`` with ``~ 4 N_d`` non-zeros per row. Units: lengths are in pixels of size
``pixel_size`` (any length unit; ``mu`` in inverse units of it, ``y`` dimensionless); the detector
spacing and the ray step are one pixel. Angles are uniformly spaced over [0, 180) degrees,
``theta_a = 180 a / num_angles``; at ``theta = 0`` rays run along the image's rows axis (``H``) and
the detector along its columns (so the projection is a column sum). The rotation centre is
pixel ``(W // 2, W // 2)`` (as scikit-image's ``radon``).

Shapes: input ``(1, W, W)``, output sinogram ``(1, num_angles, num_detectors)`` with
``num_detectors = N_d = ceil(sqrt(2) W)`` (91 for W = 64, 182 for W = 128).

Why a sparse matrix. Building ``A`` and ``A^T`` once (cached per process by size) is slower than
building deepinv's grid-sample operator; in exchange forward and adjoint are more than ten times
faster per call (``docs/benchmarks/components.md``, forward-model table),
``A^T`` is the exact transpose (dot-product test ~1e-17 relative in float64, ~1e-9 in float32),
and float32/float64 and devices need no special care. Memory: 12 bytes per non-zero per matrix in
float64 (int32 indices): 0.27 M non-zeros (~6 MB for ``A`` and ``A^T``) at 64x64/30 angles,
6.5 M (~160 MB) at 128x128/180 angles.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings

import torch

from forward_models.base import GRAM_CUTOFF, ForwardModel, check_batch, check_damping
from forward_models.errors import ForwardModelError
from forward_models.singular_basis import DenseBasis, basis_rank_budget, randomized_basis

__all__ = ["EXACT_PINV_MAX_MEASUREMENTS", "ParallelBeamCT", "SparseRays", "ramp_filter", "radon_matrix", "range_basis"]

_FILTERS = ("ramp", "hann")

#: largest sinogram (``num_angles * num_detectors`` entries) whose pseudo-inverse is solved exactly through
#: the eigendecomposition of ``A A^T`` (:func:`range_basis`; ``8 m^2`` bytes, 60 MB at 64x64 / 30 views,
#: 512 MB at 8192); larger ones fall back to conjugate gradients
EXACT_PINV_MAX_MEASUREMENTS = 8192

#: below this many measurements :func:`range_basis` takes the SVD of the dense ``A`` (cut-off ``1e-12 s_max``)
_SVD_MAX_MEASUREMENTS = 256


@functools.lru_cache(maxsize=8)
def radon_matrix(img_size: int, num_angles: int, chunk: int = 16):
    """CSR components of the parallel-beam projector ``A`` and of ``A^T`` (float64 values, int32 indices, CPU).

    Returns ``((crow, col, val), (crow_T, col_T, val_T), num_detectors)``; ``A`` has shape
    ``(num_angles * num_detectors, img_size**2)``, rows ordered (angle, detector) and columns the
    row-major pixels. Built in chunks of ``chunk`` angles (bilinear weights of every ray sample,
    duplicates summed); cached per ``(img_size, num_angles)`` for the process.
    """
    W = int(img_size)
    A = int(num_angles)
    Nd = int(math.ceil(math.sqrt(2) * W))
    pad_before = Nd // 2 - W // 2
    f64 = torch.float64
    s = torch.linspace(-1, 1, Nd, dtype=f64)
    theta = torch.arange(A, dtype=f64) * (math.pi / A)  # 180 a / A degrees
    cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    t, d = s[None, :, None], s[None, None, :]  # ray parameter (summed), detector coordinate
    crows, cols, vals = [torch.zeros(1, dtype=torch.long)], [], []
    nnz = 0
    for a0 in range(0, A, chunk):
        c, sn = cos[a0:a0 + chunk], sin[a0:a0 + chunk]
        na = c.shape[0]
        px = (c * d + sn * t + 1) * (0.5 * (Nd - 1)) - pad_before  # image column of each sample
        py = (-sn * d + c * t + 1) * (0.5 * (Nd - 1)) - pad_before  # image row
        x0, y0 = torch.floor(px), torch.floor(py)
        fx, fy = px - x0, py - y0
        x0, y0 = x0.long(), y0.long()
        row = (torch.arange(na)[:, None, None] * Nd + torch.arange(Nd)[None, None, :]).expand(na, Nd, Nd)
        keys, ws = [], []
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < W) & (w > 1e-12)  # drop rounding-noise weights
            keys.append(row[ok] * (W * W) + yi[ok] * W + xi[ok])
            ws.append(w[ok])
        uk, inv = torch.unique(torch.cat(keys), sorted=True, return_inverse=True)
        v = torch.zeros(uk.numel(), dtype=f64).index_add_(0, inv, torch.cat(ws))
        counts = torch.bincount(uk // (W * W), minlength=na * Nd)
        crows.append(torch.cumsum(counts, 0) + nnz)
        cols.append(uk % (W * W))
        vals.append(v)
        nnz += v.numel()
    crow, col, val = torch.cat(crows), torch.cat(cols), torch.cat(vals)
    # A^T in CSR = A in CSC: a stable sort by column keeps rows ascending within each column
    rows = torch.repeat_interleave(torch.arange(A * Nd), crow[1:] - crow[:-1])
    perm = torch.argsort(col, stable=True)
    crow_t = torch.zeros(W * W + 1, dtype=torch.long)
    crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=W * W), 0)
    i32 = torch.int32
    return ((crow.to(i32), col.to(i32), val), (crow_t.to(i32), rows[perm].to(i32), val[perm]), Nd)


def ramp_filter(num_detectors: int, kind: str = "ramp", *, dtype=torch.float64, device=None):
    """Real frequency response ``(P // 2 + 1,)`` of the FBP filter for sinograms of ``num_detectors`` bins.

    Ram-Lak ramp filter built in the spatial domain on a unit detector grid (Kak & Slaney 1988,
    eq. 3.61): ``h[0] = 1/4``, ``h[n] = -1 / (pi n)^2`` for odd ``n``, 0 for even ``n != 0``; zero
    padded to ``P = max(64, 2^ceil(log2(2 num_detectors)))`` so the circular convolution is linear.
    ``kind="hann"`` multiplies it by the Hann window ``(1 + cos(2 pi f)) / 2`` (``f`` in cycles per
    bin), trading resolution for noise.
    """
    if kind not in _FILTERS:
        raise ForwardModelError(f"unknown FBP filter {kind!r}; known: {', '.join(_FILTERS)}")
    P = max(64, 2 ** int(math.ceil(math.log2(2 * int(num_detectors)))))
    n = torch.arange(P, dtype=torch.float64)
    n = torch.where(n < P // 2, n, n - P)
    h = torch.zeros(P, dtype=torch.float64)
    h[0] = 0.25
    odd = (n.abs() % 2) == 1
    h[odd] = -1.0 / (math.pi * n[odd]) ** 2
    H = torch.fft.rfft(h).real
    if kind == "hann":
        f = torch.fft.rfftfreq(P, dtype=torch.float64)
        H = H * 0.5 * (1 + torch.cos(2 * math.pi * f))
    return H.to(dtype=dtype, device=device)


def _resolved_eigenvalue(lam: torch.Tensor, m: int) -> float:
    """The smallest eigenvalue of ``A A^T`` that :func:`range_basis` resolves for a sinogram of ``m`` entries: the
    Gram eigenproblem's ``(GRAM_CUTOFF s_max)^2``, or ``(1e-12 s_max)^2`` from the SVD of small sinograms."""
    return (GRAM_CUTOFF if m >= _SVD_MAX_MEASUREMENTS else 1e-12) ** 2 * float(lam.max())


@functools.lru_cache(maxsize=2)
def range_basis(img_size: int, num_angles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvectors and eigenvalues ``(U, lam)`` of ``A A^T`` for the projector ``A`` of :func:`radon_matrix`.

    ``A A^T = U diag(lam) U^T`` (pixel size 1, float64, CPU, ``lam`` descending and clamped at 0), so that
    ``A^T (A A^T + d I)^{-1} = A^T U diag(1 / (lam + d)) U^T`` (:meth:`ParallelBeamCT.pseudo_inverse`).
    Small sinograms (fewer than 256 entries): ``lam = s^2`` from the SVD of the dense ``A`` (its range
    only: the rest of measurement space is mapped to zero by ``A^T``). Larger ones: the symmetric
    eigenproblem of ``A A^T`` built as a sparse-dense product (Golub and Van Loan 2013, sec. 8.6), ~3x
    faster than the SVD, every eigenpair kept; an eigenvalue then carries an absolute error
    ~ ``eps lam_max`` (the solve's relative error ~ ``eps lam_max / d``), so a hard pseudo-inverse
    (``d = 0``) must drop ``lam`` below a cut-off. Cached per ``(img_size, num_angles)`` (two
    geometries); 64x64 with 30 views: 2730 x 2730 (60 MB), seconds to build. The tensors are
    shared: do not modify them in place.
    """
    (crow, col, val), _, Nd = radon_matrix(int(img_size), int(num_angles))
    m, d = int(num_angles) * Nd, int(img_size) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sparse CSR is a beta API
        A = torch.sparse_csr_tensor(crow, col, val, (m, d), check_invariants=False)
        At = A.to_dense().T.contiguous()  # (d, m)
        if m < _SVD_MAX_MEASUREMENTS:
            U, s, _ = torch.linalg.svd(At.T, full_matrices=False)
            return U.contiguous(), (s**2).contiguous()
        G = A @ At  # A A^T, (m, m)
    lam, U = torch.linalg.eigh(0.5 * (G + G.T))
    return U.flip(1).contiguous(), lam.flip(0).clamp_min(0).contiguous()


class _SparseMatmul(torch.autograd.Function):
    """``M @ X`` with backward ``M^T @ G`` (itself differentiable: double backward works)."""

    @staticmethod
    def forward(ctx, X, M, MT):
        ctx.mats = (M, MT)
        return M @ X

    @staticmethod
    def backward(ctx, G):
        M, MT = ctx.mats
        return _SparseMatmul.apply(G.contiguous(), MT, M), None, None


def _check_int(v, name: str, lo: int) -> int:
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < lo:
        raise ForwardModelError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


class SparseRays:
    """The sparse projector shared by the ray-driven CT models (:class:`ParallelBeamCT`,
    :class:`forward_models.fanbeam.FanBeamCT`): ``A`` and ``A^T`` stored as CSR arrays (``A_crow, A_col, A_val``
    and ``AT_*`` buffers), cast to the input's dtype and device once, and applied with a differentiable
    sparse product. Subclasses set ``num_angles``, ``num_detectors``, ``img_size`` and the six buffers."""

    def __getstate__(self):
        # the cached sparse CSR tensors cannot be deep-copied or pickled; they are rebuilt on demand
        state = self.__dict__.copy()
        state["_cast_cache"] = {}
        state["_basis_cache"] = {}
        return state

    @property
    def nnz(self) -> int:
        """Number of non-zeros of the projector ``A``."""
        return int(self.A_val.numel())

    def _mats(self, dtype, device):
        if not hasattr(self, "_cast_cache"):
            self._cast_cache = {}
        key = (dtype, device, self.A_val.data_ptr(), self.AT_val.data_ptr(), self.A_val._version, self.AT_val._version)
        mats = self._cast_cache.get(key)
        if mats is None:
            n_rows, n_cols = self.num_angles * self.num_detectors, self.img_size**2
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sparse CSR is a beta API
                M = torch.sparse_csr_tensor(self.A_crow, self.A_col, self.A_val.to(dtype), (n_rows, n_cols),
                                            check_invariants=False)
                MT = torch.sparse_csr_tensor(self.AT_crow, self.AT_col, self.AT_val.to(dtype), (n_cols, n_rows),
                                             check_invariants=False)
            if len(self._cast_cache) >= 4:  # stale keys after .to(): start afresh
                self._cast_cache = {}
            mats = self._cast_cache[key] = (M, MT)
        return mats

    def _project(self, x, transpose: bool):
        """``A x`` (or ``A^T x``) of a batch flattened to ``(B, n)``: returns ``(B, m)``."""
        M, MT = self._mats(x.dtype, x.device)
        if transpose:
            M, MT = MT, M
        return _SparseMatmul.apply(x.reshape(x.shape[0], -1).T.contiguous(), M, MT).T


class ParallelBeamCT(SparseRays, ForwardModel):
    """Sparse-view parallel-beam CT ``y = pixel_size * A mu``: image ``(1, W, W)`` -> sinogram ``(1, num_angles, N_d)``.

    ``A`` is the discrete Radon transform of the module docstring (``num_angles`` angles uniform in
    [0, 180) degrees, ``N_d = ceil(sqrt(2) W)`` detector bins of one pixel). Linear and
    differentiable; the adjoint is the exact transpose (back-projection), and

    - ``fbp(y)`` is filtered back-projection, the classical baseline (Kak & Slaney 1988, ch. 3.3):
      ``mu ~ (pi / (num_angles * pixel_size)) A^T (h * y)`` with the ramp filter ``h``
      of :func:`ramp_filter` applied along the detector axis;
    - ``pseudo_inverse`` (damped, ``A^T (A A^T + d I)^{-1} y``) is exact through the cached
      eigendecomposition of ``A A^T`` (:func:`range_basis`) for sinograms of up to
      :data:`EXACT_PINV_MAX_MEASUREMENTS` entries, the generic conjugate gradients of
      :class:`ForwardModel` beyond (which stop far from the solution at small damping: pseudo-inverse
      table in ``docs/benchmarks/components.md``).

    Construction builds the sparse ``A`` and ``A^T`` (cached per process by size), no operator-norm
    estimate.

    Example::

        import torch
        from forward_models.tomography import ParallelBeamCT
        from forward_models.generators.phantoms import shepp_logan
        op = ParallelBeamCT(64, 30)
        mu = shepp_logan(64)[None]             # (1, 1, 64, 64)
        y = op(mu)                             # (1, 1, 30, 91)
        mu_fbp = op.fbp(y)                     # (1, 1, 64, 64)
    """

    linear = True
    differentiable = True

    def __init__(self, img_size: int = 64, num_angles: int = 30, *, pixel_size: float = 1.0, device=None):
        super().__init__()
        W = _check_int(img_size, "img_size", 4)
        A = _check_int(num_angles, "num_angles", 1)
        try:
            pixel_size = float(pixel_size)
        except (TypeError, ValueError):
            raise ForwardModelError(f"pixel_size must be a positive number, got {pixel_size!r}") from None
        if not (math.isfinite(pixel_size) and pixel_size > 0):
            raise ForwardModelError(f"pixel_size must be positive and finite, got {pixel_size}")
        (crow, col, val), (crow_t, col_t, val_t), Nd = radon_matrix(W, A)
        self.img_size, self.num_angles, self.num_detectors = W, A, Nd
        self.pixel_size = pixel_size
        for name, tensor in (("A_crow", crow), ("A_col", col), ("A_val", val),
                             ("AT_crow", crow_t), ("AT_col", col_t), ("AT_val", val_t)):
            self.register_buffer(name, tensor, persistent=False)
        self.register_buffer("angles_deg", torch.arange(A, dtype=torch.float64) * (180.0 / A), persistent=False)
        self.input_shape = (1, W, W)
        self.output_shape = (1, A, Nd)
        self._cast_cache: dict = {}
        self._basis_cache: dict = {}
        if device is not None:
            self.to(device)

    def forward(self, x):
        """Sinogram ``pixel_size * A mu`` of a batch ``(B, 1, W, W)`` -> ``(B, 1, num_angles, N_d)``."""
        y = self._project(x, transpose=False)
        return (y * self.pixel_size).reshape(x.shape[0], *self.output_shape)

    def adjoint(self, y):
        """Back-projection ``pixel_size * A^T y`` of a batch ``(B, 1, num_angles, N_d)`` -> ``(B, 1, W, W)``."""
        check_batch(y, self.output_shape, "measurement")
        x = self._project(y, transpose=True)
        return (x * self.pixel_size).reshape(y.shape[0], *self.input_shape)

    def pseudo_inverse(self, y: torch.Tensor, *, damping: float = 0.0, iterations: int = 200, tol: float = 1e-10,
                       exact: bool | None = None) -> torch.Tensor:
        """Damped minimum-norm solution ``A_p^T (A_p A_p^T + damping I)^{-1} y`` with ``A_p = pixel_size * A``.

        ``exact`` (default: when the sinogram has at most :data:`EXACT_PINV_MAX_MEASUREMENTS` entries):
        with ``A A^T = U diag(lam) U^T`` from :func:`range_basis` (computed once per geometry and process),

            ``x = A_p^T U diag(1 / (pixel_size^2 lam + damping)) U^T y``,

        to ~ ``eps s_max^2 / damping`` relative; at ``damping = 0`` the pseudo-inverse ``A^+ y`` with
        singular values below ``1e-5 s_max`` (``1e-12 s_max`` for sinograms under 256 entries: the
        resolution of :func:`range_basis`) treated as unobserved, like ``pinv(A, rtol=1e-5)``.
        ``exact=False``: the conjugate gradients of :meth:`ForwardModel.pseudo_inverse` (``iterations``,
        ``tol``), which truncate at small damping. Batched ``(B, 1, num_angles, N_d)`` -> ``(B, 1, W, W)``.
        """
        m = self.num_angles * self.num_detectors
        if not (self._exact_pinv if exact is None else exact):
            return super().pseudo_inverse(y, damping=damping, iterations=iterations, tol=tol)
        check_batch(y, self.output_shape, "measurement")
        damping = check_damping(damping)
        U, lam = self._basis(y.device)  # float64 throughout: ~2 m^2 flops per item
        lam = lam * self.pixel_size**2
        if damping > 0:
            gain = 1.0 / (lam + damping)
        else:  # hard pseudo-inverse: eigenvalues below the resolution of the decomposition are unobserved
            cut = _resolved_eigenvalue(lam, m)
            gain = torch.where(lam > cut, 1.0 / lam.clamp_min(cut), torch.zeros_like(lam))
        coef = y.reshape(y.shape[0], m).to(torch.float64) @ U  # (B, m)
        z = (coef * gain) @ U.T  # A^T z cancels strongly at small damping: back-project in float64 too
        return self.adjoint(z.reshape(y.shape[0], *self.output_shape)).to(y.dtype)

    @property
    def _exact_pinv(self) -> bool:
        """Whether :meth:`pseudo_inverse` defaults to the exact route (sinogram of at most
        :data:`EXACT_PINV_MAX_MEASUREMENTS` entries)."""
        return self.num_angles * self.num_detectors <= EXACT_PINV_MAX_MEASUREMENTS

    def prepare_pseudo_inverse(self) -> None:
        """Compute the eigendecomposition of ``A A^T`` (:func:`range_basis`) the exact pseudo-inverse uses,
        on the operator's device, if the sinogram is small enough for it."""
        if self._exact_pinv:
            self._basis(self.A_val.device)

    def singular_basis(self, rank: int | None = None) -> DenseBasis:
        """Singular basis of ``pixel_size * A`` in float64 on the CPU (:mod:`forward_models.singular_basis`).

        Exact when the full basis fits :data:`~forward_models.singular_basis.MAX_BASIS_BYTES` and the sinogram has at
        most :data:`EXACT_PINV_MAX_MEASUREMENTS` entries and no ``rank`` is asked: from ``A A^T = U diag(lam) U^T``
        (:func:`range_basis`), ``s = sqrt(lam)`` (below the decomposition's resolution dropped) and
        ``Vh = diag(1/s) U^T A`` (one sparse product). Otherwise truncated to ``rank`` (default: the largest
        that fits the budget) by the randomized range finder
        (:func:`~forward_models.singular_basis.randomized_basis`) on the sparse products, the truncation
        recorded on the basis."""
        m, d = self.num_angles * self.num_detectors, self.img_size**2
        budget_rank = basis_rank_budget(d, m)
        f64 = torch.float64
        if rank is None and budget_rank == min(m, d) and self._exact_pinv:
            U, lam = range_basis(self.img_size, self.num_angles)
            cut = _resolved_eigenvalue(lam, m)
            keep = lam > cut
            U = U[:, keep]
            s = lam[keep].sqrt()
            Vh = self._project(U.T.to(self.A_val.device, f64), transpose=True).cpu() / s[:, None]  # rows U^T A / s
            return DenseBasis(U.contiguous(), s * self.pixel_size, Vh.contiguous())
        rank = budget_rank if rank is None else int(rank)
        where = self.A_val.device  # the products run where the operator lives; the basis is built on the CPU

        def forward(X):
            return self._project(X.to(where, f64), transpose=False).cpu() * self.pixel_size

        def adjoint(Y):
            return self._project(Y.to(where, f64), transpose=True).cpu() * self.pixel_size

        return randomized_basis(forward, adjoint, d, m, rank)

    def _basis(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`range_basis` of this geometry as float64 tensors on ``device`` (kept for the next call)."""
        key = str(device)
        if key not in self._basis_cache:
            U, lam = range_basis(self.img_size, self.num_angles)
            if len(self._basis_cache) >= 2:
                self._basis_cache = {}
            self._basis_cache[key] = (U.to(device), lam.to(device))
        return self._basis_cache[key]

    def fbp(self, y, filter: str = "ramp"):
        """Filtered back-projection ``(pi / (num_angles pixel_size)) A^T (h * y)`` -> ``(B, 1, W, W)``.

        ``filter``: "ramp" (Ram-Lak) or "hann" (ramp times a Hann window), see :func:`ramp_filter`.
        Exact for band-limited data in the limit of many angles; streaks with few angles.
        """
        check_batch(y, self.output_shape, "measurement")
        if not bool(torch.isfinite(y).all()):
            raise ForwardModelError("the sinogram passed to fbp contains NaN or Inf")
        H = ramp_filter(self.num_detectors, filter, dtype=y.dtype, device=y.device)
        P = 2 * (H.numel() - 1)
        q = torch.fft.irfft(torch.fft.rfft(y, n=P, dim=-1) * H, n=P, dim=-1)[..., : self.num_detectors]
        x = self._project(q.contiguous(), transpose=True).reshape(y.shape[0], *self.input_shape)
        return x * (math.pi / (self.num_angles * self.pixel_size))

    def matrix(self):
        """Dense ``pixel_size * A`` (float64), shape ``(num_angles * N_d, W^2)``; for small sizes only."""
        M, _ = self._mats(torch.float64, self.A_val.device)
        return M.to_dense() * self.pixel_size

    def config(self):
        """Constructor arguments and geometry (JSON)."""
        return {**super().config(), "class": "ParallelBeamCT", "img_size": self.img_size,
                "num_angles": self.num_angles, "num_detectors": self.num_detectors,
                "pixel_size": self.pixel_size, "angles": "uniform over [0, 180) degrees"}


# --------------------------------------------------------------------------- registry entries

def _example_ct(seed: int) -> ParallelBeamCT:
    # Two views (0 and 90 degrees): the contract suite checks the generic conjugate-gradient
    # pseudo-inverse to 1e-8, which needs a well-conditioned A A^T. With 2 angles the 16x16
    # projector's condition number (on its range) is 1.41; with 3 to 12 angles it is 8e2 to 1e6
    # and 200 CG iterations stop far from 1e-8. The geometry is deterministic; the seed is unused.
    return ParallelBeamCT(16, 2)


def _benchmark_ct() -> ParallelBeamCT:
    return ParallelBeamCT(64, 30)


#: name -> class, small example builder, benchmark-size builder (64x64, 30 angles)
REGISTRY_ENTRIES = {"ct": {"cls": ParallelBeamCT, "example": _example_ct, "benchmark": _benchmark_ct}}
