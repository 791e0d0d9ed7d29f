"""Fan-beam computed tomography with a flat, equispaced detector: a ray-driven projector as a sparse matrix.

Geometry (third-generation scanner, Kak & Slaney, *Principles of Computerized Tomographic Imaging*,
IEEE Press 1988, sec. 3.4.2 "equally spaced collinear detectors"). The image lies in the plane with its
centre at the isocentre; pixel ``(i, j)`` of a ``W x W`` image sits at ``(x, y) = (j - c, c - i)`` pixels,
``c = (W - 1) / 2``. For the source angle ``beta``

    source             ``S = R (cos beta, sin beta)``            (``R``: source-to-isocentre distance)
    detector element   ``P_k = S - D (cos beta, sin beta) + u_k (-sin beta, cos beta)``
    detector positions ``u_k = (k - (n_d - 1) / 2) du``,  ``k = 0 .. n_d - 1``   (flat, equispaced, centred)

(``D``: source-to-detector distance, ``du``: detector spacing, all in the units of ``pixel_size``), and
the measurement of element ``k`` is the line integral of the attenuation ``mu`` along the segment
``S -> P_k`` (Beer-Lambert: ``-log(I / I_0)``). Source angles are uniform over a full turn,
``beta_a = 360 a / num_angles`` degrees, unless given.

Discretisation (ray-driven, as Joseph's method with a fixed step; Joseph, IEEE TMI 1:192, 1982): each
ray is sampled at the midpoints of ``K`` steps of length ``h`` (``ray_step`` pixels) spanning the
distances ``[R - r, R + r]`` from the source, ``r = W / sqrt(2) + 1`` the radius of a disc holding the
image, and the image is interpolated bilinearly between pixel centres (zero outside), so

    ``y[a, k] = pixel_size * h * sum_t bilinear(mu, S_a + t_t (P_{a,k} - S_a) / |P_{a,k} - S_a|)``,

a linear map ``A`` stored as a sparse CSR matrix with its transpose (built once, cached per geometry
for the process). The adjoint is the exact transpose, in float64 and float32 alike.

Reconstruction baselines:

- :meth:`FanBeamCT.fbp`: weighted filtered back-projection for the flat detector (Kak & Slaney 1988,
  eqs. 3.4.2): rescale to the virtual detector through the isocentre (``p = u R / D``), weight by
  ``R / sqrt(R^2 + p^2)``, convolve with half the ramp filter, back-project with the distance weight
  ``1 / U^2`` (``U = (R - x cos beta - y sin beta) / R``) over the full turn. Pixel-driven; it is not
  ``A^T`` applied to filtered data, because the transpose of a ray-driven projector does not carry the
  fan's ``1 / U^2`` weight.
- :meth:`FanBeamCT.pseudo_inverse`: damped minimum-norm solution, exact through the eigendecomposition
  of ``A A^T`` for sinograms up to :data:`forward_models.tomography.EXACT_PINV_MAX_MEASUREMENTS`
  entries, conjugate gradients beyond.

Shapes: input ``(1, W, W)``; output sinogram ``(1, num_angles, num_detectors)``.

Example::

    from forward_models.fanbeam import FanBeamCT
    from forward_models.generators.phantoms import shepp_logan
    op = FanBeamCT(64, 30)                     # R = 128, D = 256 pixels, 101 detectors
    y = op(shepp_logan(64)[None].double())     # (1, 1, 30, 101)
    x = op.fbp(y)                              # (1, 1, 64, 64)
"""

from __future__ import annotations

import functools
import math
import warnings

import torch

from forward_models.base import GRAM_CUTOFF, ForwardModel, check_batch, check_damping
from forward_models.errors import ForwardModelError, integer_at_least, number_in
from forward_models.tomography import EXACT_PINV_MAX_MEASUREMENTS, SparseRays, ramp_filter

__all__ = ["FanBeamCT", "fanbeam_matrix"]

#: CSR matrices this module keeps built per process (a 64 x 64 image with 30 views: ~0.6 M non-zeros)
_MATRIX_CACHE = 4


def _default_geometry(W: int) -> tuple[float, float, float, int]:
    """``(R, D, du, n_d)`` in pixels for a ``W x W`` image: ``R = 2 W``, ``D = 2 R``, one pixel per detector
    element at the isocentre (``du = D / R``), and enough elements for the fan to cover the image's corners."""
    R = 2.0 * W
    D = 2.0 * R
    du = D / R
    r = W / math.sqrt(2) + 1.0
    n_d = int(math.ceil(2 * D * math.tan(math.asin(r / R)) / du)) + 2
    return R, D, du, n_d


@functools.lru_cache(maxsize=_MATRIX_CACHE)
def fanbeam_matrix(img_size: int, angles_deg: tuple[float, ...], source_distance: float, detector_distance: float,
                   num_detectors: int, detector_spacing: float, ray_step: float = 0.5, chunk: int = 8):
    """CSR components of the fan-beam projector ``A`` (pixel units, pixel size 1) and of ``A^T``.

    Lengths in pixels; ``angles_deg`` the source angles. Returns ``((crow, col, val), (crow_T, col_T, val_T))``
    (float64 values, int32 indices, CPU); ``A`` has shape ``(num_angles * num_detectors, img_size**2)``,
    rows ordered (angle, detector), columns the row-major pixels. Cached per geometry for the process.
    """
    W, Nd = int(img_size), int(num_detectors)
    R, D, du, h = float(source_distance), float(detector_distance), float(detector_spacing), float(ray_step)
    f64 = torch.float64
    c = (W - 1) / 2
    r = W / math.sqrt(2) + 1.0
    K = int(math.ceil(2 * r / h))
    t = (R - r + (torch.arange(K, dtype=f64) + 0.5) * h)[None, None, :]  # distance from the source
    u = ((torch.arange(Nd, dtype=f64) - (Nd - 1) / 2) * du)[None, :, None]
    beta = torch.deg2rad(torch.tensor(angles_deg, dtype=f64))
    A = beta.numel()
    crows, cols, vals = [torch.zeros(1, dtype=torch.long)], [], []
    nnz = 0
    for a0 in range(0, A, chunk):
        b = beta[a0:a0 + chunk][:, None, None]
        na = b.shape[0]
        cb, sb = torch.cos(b), torch.sin(b)
        norm = torch.sqrt(D**2 + u**2)
        dx, dy = (-D * cb - u * sb) / norm, (-D * sb + u * cb) / norm  # unit ray direction, (na, Nd, 1)
        px = R * cb + t * dx + c  # image column of each sample, (na, Nd, K)
        py = c - (R * sb + t * dy)  # image row
        x0, y0 = torch.floor(px), torch.floor(py)
        fx, fy = px - x0, py - y0
        x0, y0 = x0.long(), y0.long()
        row = (torch.arange(na)[:, None, None] * Nd + torch.arange(Nd)[None, :, None]).expand(na, Nd, K)
        keys, ws = [], []
        for ex, ey, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xi, yi = x0 + ex, y0 + ey
            ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < W) & (w > 1e-12)  # drop rounding-noise weights
            keys.append(row[ok] * (W * W) + yi[ok] * W + xi[ok])
            ws.append(w[ok] * h)
        uk, inv = torch.unique(torch.cat(keys), sorted=True, return_inverse=True)
        v = torch.zeros(uk.numel(), dtype=f64).index_add_(0, inv, torch.cat(ws))
        counts = torch.bincount(uk // (W * W), minlength=na * Nd)
        crows.append(torch.cumsum(counts, 0) + nnz)
        cols.append(uk % (W * W))
        vals.append(v)
        nnz += v.numel()
    crow, col, val = torch.cat(crows), torch.cat(cols), torch.cat(vals)
    rows = torch.repeat_interleave(torch.arange(A * Nd), crow[1:] - crow[:-1])
    perm = torch.argsort(col, stable=True)  # A^T in CSR = A in CSC
    crow_t = torch.zeros(W * W + 1, dtype=torch.long)
    crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=W * W), 0)
    i32 = torch.int32
    return (crow.to(i32), col.to(i32), val), (crow_t.to(i32), rows[perm].to(i32), val[perm])


class FanBeamCT(SparseRays, ForwardModel):
    """Fan-beam CT with a flat detector ``y = A mu``: image ``(1, W, W)`` -> sinogram ``(1, num_angles, n_d)``.

    Args:
        img_size: image side ``W`` in pixels (at least 4).
        num_angles: number of source angles, uniform over [0, 360) degrees (ignored when ``angles`` is given).
        angles: source angles in degrees (any order, e.g. those a scanner recorded).
        source_distance: source-to-isocentre distance ``R`` (default ``2 W`` pixels); must exceed the radius
            ``W / sqrt(2) + 1`` pixels of the disc holding the image.
        detector_distance: source-to-detector distance ``D > R`` (default ``2 R``).
        num_detectors: detector elements ``n_d`` (default: enough for the fan to cover the image).
        detector_spacing: element pitch ``du`` at the detector (default ``D / R`` pixels: one pixel at the
            isocentre).
        pixel_size: length of a pixel; every length above is in its unit (default: pixels).
        ray_step: step along each ray, in pixels (default 0.5).

    Linear and differentiable; the adjoint is the exact transpose. ``fbp(y)`` is the weighted
    filtered back-projection of the module docstring; ``pseudo_inverse`` is exact for sinograms of up to
    :data:`~forward_models.tomography.EXACT_PINV_MAX_MEASUREMENTS` entries.

    Example::

        import torch
        from forward_models.fanbeam import FanBeamCT
        op = FanBeamCT(32, 24, source_distance=80.0, detector_distance=160.0)
        y = op(torch.rand(2, 1, 32, 32, dtype=torch.float64))   # (2, 1, 24, n_d)
        x = op.adjoint(y)                                       # (2, 1, 32, 32)
    """

    linear = True
    differentiable = True

    def __init__(self, img_size: int = 64, num_angles: int = 30, *, angles=None, source_distance: float | None = None,
                 detector_distance: float | None = None, num_detectors: int | None = None,
                 detector_spacing: float | None = None, pixel_size: float = 1.0, ray_step: float = 0.5, device=None):
        super().__init__()
        W = integer_at_least(img_size, "img_size", 4)
        ps = number_in(pixel_size, "pixel_size", 0.0, closed="neither")
        step = number_in(ray_step, "ray_step", 0.0, 2.0, closed="right")
        if angles is None:
            A = integer_at_least(num_angles, "num_angles", 1)
            angles_deg = tuple(360.0 * a / A for a in range(A))
        else:
            angles_deg = tuple(number_in(float(a), "angle") for a in torch.as_tensor(angles).reshape(-1).tolist())
            if not angles_deg:
                raise ForwardModelError("FanBeamCT: angles is empty")
        R0, _, _, _ = _default_geometry(W)
        R = R0 if source_distance is None else number_in(source_distance, "source_distance", 0.0,
                                                         closed="neither") / ps
        r = W / math.sqrt(2) + 1.0
        if R <= r:
            raise ForwardModelError(f"source_distance must exceed the radius of the image's disc, "
                                    f"{r * ps:g} (W / sqrt(2) + 1 pixels), got {R * ps:g}")
        D = 2.0 * R if detector_distance is None else number_in(detector_distance, "detector_distance", 0.0,
                                                                 closed="neither") / ps
        if D <= R:
            raise ForwardModelError(f"detector_distance ({D * ps:g}) must exceed source_distance ({R * ps:g})")
        du = D / R if detector_spacing is None else number_in(detector_spacing, "detector_spacing", 0.0,
                                                               closed="neither") / ps
        if num_detectors is None:
            Nd = int(math.ceil(2 * D * math.tan(math.asin(r / R)) / du)) + 2
        else:
            Nd = integer_at_least(num_detectors, "num_detectors", 1)
        self.img_size, self.num_angles, self.num_detectors = W, len(angles_deg), Nd
        self.pixel_size, self.ray_step = ps, step
        self._geometry = (R, D, du)  # pixels
        (crow, col, val), (crow_t, col_t, val_t) = fanbeam_matrix(W, angles_deg, R, D, Nd, du, step)
        for name, tensor in (("A_crow", crow), ("A_col", col), ("A_val", val),
                             ("AT_crow", crow_t), ("AT_col", col_t), ("AT_val", val_t)):
            self.register_buffer(name, tensor, persistent=False)
        self.register_buffer("angles_deg", torch.tensor(angles_deg, dtype=torch.float64), persistent=False)
        self.input_shape = (1, W, W)
        self.output_shape = (1, self.num_angles, Nd)
        self._cast_cache: dict = {}
        self._basis_cache: dict = {}
        if device is not None:
            self.to(device)

    # ------------------------------------------------------------------ geometry in physical units
    @property
    def source_distance(self) -> float:
        """Source-to-isocentre distance ``R`` (units of ``pixel_size``)."""
        return self._geometry[0] * self.pixel_size

    @property
    def detector_distance(self) -> float:
        """Source-to-detector distance ``D`` (units of ``pixel_size``)."""
        return self._geometry[1] * self.pixel_size

    @property
    def detector_spacing(self) -> float:
        """Detector element pitch ``du`` at the detector (units of ``pixel_size``)."""
        return self._geometry[2] * self.pixel_size

    def forward(self, x):
        """Sinogram ``A mu`` of a batch ``(B, 1, W, W)`` -> ``(B, 1, num_angles, num_detectors)``."""
        return (self._project(x, False) * self.pixel_size).reshape(x.shape[0], *self.output_shape)

    def adjoint(self, y):
        """Back-projection ``A^T y`` (exact transpose) of a batch ``(B, 1, num_angles, num_detectors)``."""
        check_batch(y, self.output_shape, "measurement")
        return (self._project(y, True) * self.pixel_size).reshape(y.shape[0], *self.input_shape)

    def matrix(self):
        """Dense ``A`` (float64), shape ``(num_angles * num_detectors, W^2)``; for small sizes only."""
        M, _ = self._mats(torch.float64, self.A_val.device)
        return M.to_dense() * self.pixel_size

    # ------------------------------------------------------------------ reconstructions
    def fbp(self, y, filter: str = "ramp"):
        """Weighted fan-beam filtered back-projection (flat detector; Kak & Slaney 1988, sec. 3.4.2).

        With the virtual detector ``p_k = u_k R / D`` (pitch ``dp = du R / D``):
        ``q = (y R / sqrt(R^2 + p^2)) * h / (2 dp)`` (``h``: :func:`~forward_models.tomography.ramp_filter`
        on unit spacing, half the ramp for a full turn), then for each pixel, with ``L = R - x cos beta -
        y sin beta`` its distance from the source along the central ray and ``p' = R (-x sin beta + y cos beta)
        / L`` its virtual detector position, ``mu = (2 pi / num_angles) sum_a (R / L)^2 q_a(p') / pixel_size``
        (``q`` interpolated linearly, zero off the detector). Assumes angles uniform over a full turn.
        ``(B, 1, num_angles, n_d)`` -> ``(B, 1, W, W)``.
        """
        check_batch(y, self.output_shape, "measurement")
        if not bool(torch.isfinite(y).all()):
            raise ForwardModelError("the sinogram passed to fbp contains NaN or Inf")
        R, D, du = self._geometry
        dt, dev = y.dtype, y.device
        Nd, W = self.num_detectors, self.img_size
        p = (torch.arange(Nd, dtype=dt, device=dev) - (Nd - 1) / 2) * (du * R / D)
        dp = du * R / D
        q = y[:, 0] * (R / torch.sqrt(R**2 + p**2))  # (B, A, Nd)
        H = ramp_filter(Nd, filter, dtype=dt, device=dev)
        P = 2 * (H.numel() - 1)
        q = torch.fft.irfft(torch.fft.rfft(q, n=P, dim=-1) * H, n=P, dim=-1)[..., :Nd] / (2 * dp)
        c = (W - 1) / 2
        coords = torch.arange(W, dtype=dt, device=dev)
        xs, ys = (coords - c)[None, :], (c - coords)[:, None]  # (1, W) columns, (W, 1) rows
        out = torch.zeros(y.shape[0], W * W, dtype=dt, device=dev)
        beta = torch.deg2rad(self.angles_deg.to(device=dev, dtype=dt))
        for a in range(self.num_angles):
            cb, sb = torch.cos(beta[a]), torch.sin(beta[a])
            L = R - xs * cb - ys * sb
            pos = R * (-xs * sb + ys * cb) / L / dp + (Nd - 1) / 2  # fractional detector index, (W, W)
            k0 = torch.floor(pos)
            f = (pos - k0).reshape(-1)
            k0 = k0.long().reshape(-1)
            qa = torch.nn.functional.pad(q[:, a], (1, 1))  # zero off the detector
            i0, i1 = (k0 + 1).clamp(0, Nd + 1), (k0 + 2).clamp(0, Nd + 1)
            val = qa[:, i0] * (1 - f) + qa[:, i1] * f
            out = out + val * ((R / L) ** 2).reshape(-1)
        out = out * (2 * math.pi / self.num_angles) / self.pixel_size
        return out.reshape(y.shape[0], *self.input_shape)

    @property
    def _exact_pinv(self) -> bool:
        return self.num_angles * self.num_detectors <= EXACT_PINV_MAX_MEASUREMENTS

    def _basis(self, device):
        """Eigenpairs ``(U, lam)`` of ``A A^T`` (pixel size 1, float64, descending), kept per device."""
        key = str(device)
        if key not in self._basis_cache:
            M, _ = self._mats(torch.float64, self.A_val.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                At = M.to_dense().T.contiguous()
                G = M @ At
            lam, U = torch.linalg.eigh(0.5 * (G + G.T))
            if len(self._basis_cache) >= 2:
                self._basis_cache = {}
            self._basis_cache[key] = (U.flip(1).contiguous().to(device), lam.flip(0).clamp_min(0).to(device))
        return self._basis_cache[key]

    def prepare_pseudo_inverse(self) -> None:
        """Compute the eigendecomposition of ``A A^T`` the exact pseudo-inverse uses (small sinograms only)."""
        if self._exact_pinv:
            self._basis(self.A_val.device)

    def pseudo_inverse(self, y, *, damping: float = 0.0, iterations: int = 200, tol: float = 1e-10,
                       exact: bool | None = None):
        """Damped minimum-norm solution ``A^T (A A^T + damping I)^{-1} y``.

        ``exact`` (default: sinograms of at most ``EXACT_PINV_MAX_MEASUREMENTS`` entries): through
        ``A A^T = U diag(lam) U^T``, computed once per operator, ``x = A^T U diag(1 / (lam + damping)) U^T y``;
        at zero damping eigenvalues below ``GRAM_CUTOFF^2 lam_max`` are treated as unobserved. Otherwise the
        conjugate gradients of :meth:`ForwardModel.pseudo_inverse`.
        """
        if not (self._exact_pinv if exact is None else exact):
            return super().pseudo_inverse(y, damping=damping, iterations=iterations, tol=tol)
        check_batch(y, self.output_shape, "measurement")
        damping = check_damping(damping)
        U, lam = self._basis(y.device)
        lam = lam * self.pixel_size**2
        if damping > 0:
            gain = 1.0 / (lam + damping)
        else:
            cut = GRAM_CUTOFF**2 * float(lam.max())
            gain = torch.where(lam > cut, 1.0 / lam.clamp_min(cut), torch.zeros_like(lam))
        m = self.num_angles * self.num_detectors
        z = ((y.reshape(y.shape[0], m).to(torch.float64) @ U) * gain) @ U.T
        return self.adjoint(z.reshape(y.shape[0], *self.output_shape)).to(y.dtype)

    # ------------------------------------------------------------------ description
    def config(self):
        """Constructor arguments (lengths in units of ``pixel_size``) and derived geometry (JSON)."""
        return {**super().config(), "class": "FanBeamCT", "img_size": self.img_size, "num_angles": self.num_angles,
                "angles": [float(a) for a in self.angles_deg], "source_distance": self.source_distance,
                "detector_distance": self.detector_distance, "num_detectors": self.num_detectors,
                "detector_spacing": self.detector_spacing, "pixel_size": self.pixel_size, "ray_step": self.ray_step,
                "detector": "flat, equispaced", "fan_angle_deg": self.fan_angle_deg}

    @property
    def fan_angle_deg(self) -> float:
        """Full fan angle spanned by the detector, in degrees."""
        R, D, du = self._geometry
        return math.degrees(2 * math.atan(0.5 * self.num_detectors * du / D))

    @classmethod
    def from_config(cls, cfg: dict, *, device=None) -> FanBeamCT:
        """The operator :meth:`config` describes."""
        keys = ("img_size", "angles", "source_distance", "detector_distance", "num_detectors", "detector_spacing",
                "pixel_size", "ray_step")
        missing = [k for k in keys if k not in cfg]
        if missing:
            raise ForwardModelError(f"FanBeamCT configuration lacks {', '.join(missing)}")
        return cls(**{k: cfg[k] for k in keys}, device=device)


# --------------------------------------------------------------------------- registry entries

def _example_fanbeam(seed: int) -> FanBeamCT:
    # few, widely spaced rays keep A A^T well conditioned, so the contract suite's generic conjugate-gradient
    # pseudo-inverse converges to 1e-8; the geometry is deterministic, the seed unused
    return FanBeamCT(12, angles=[0.0, 90.0], source_distance=30.0, num_detectors=6, detector_spacing=4.0)


def _benchmark_fanbeam() -> FanBeamCT:
    return FanBeamCT(64, 30)


#: name -> class, small example builder, benchmark-size builder (64 x 64, 30 views over a full turn)
REGISTRY_ENTRIES = {"ct-fanbeam": {"cls": FanBeamCT, "example": _example_fanbeam, "benchmark": _benchmark_fanbeam}}
