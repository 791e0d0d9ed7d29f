"""Cartesian MRI: single-coil and multi-coil (SENSE) undersampled Fourier operators.

Maths. An MRI scanner measures the Fourier transform of the (complex) transverse magnetisation
``x`` on a Cartesian grid, keeping only the phase-encode lines in a mask ``M``:

    single coil:  ``y = M F x``
    multi coil:   ``y_c = M F (S_c x)``,  c = 1..C   (Pruessmann et al., "SENSE", MRM 42:952, 1999)

``F`` is the *centred, orthonormal* 2-D DFT, ``F = fftshift . fft2(norm="ortho") . ifftshift``
(zero frequency at index ``(H // 2, W // 2)``), so ``F^H F = I`` and the fully sampled single-coil
operator is unitary: ``||F x|| = ||x||``. ``M`` zeroes the unmeasured k-space entries (whole
columns for a Cartesian mask from :func:`forward_models.masks.cartesian_mask`; any 0/1 ``(H, W)``
mask is accepted). The adjoints are ``A^H y = F^H M y`` and ``A^H y = sum_c conj(S_c) F^H M y_c``.

Layout: complex arrays are real tensors with a leading axis of length 2 holding (real, imaginary):

    image                     ``(2, H, W)``      (input_shape of both operators)
    single-coil k-space       ``(2, H, W)``      (output_shape; zeros where the mask is 0)
    multi-coil k-space        ``(2, C, H, W)``   (output_shape; coil axis after real/imag, as deepinv)
    coil maps                 ``(2, C, H, W)``   (:func:`forward_models.coils.synthetic_coil_maps`)

The real inner product on this layout is the real part of the complex one, so "adjoint" below is
the adjoint for the real inner product that the contract tests check, ``<A x, y> = <x, A^T y>``.

Noise. Complex white Gaussian k-space noise with standard deviation ``sigma`` per real and
imaginary part (total complex variance ``2 sigma^2``) is simply the library's ``Gaussian(sigma)``
noise model applied to this real layout. The measurement keeps the full grid, so unmeasured
entries are pure noise around zero: their likelihood term does not depend on ``x`` (a constant in
``log p(y | x)``), and :meth:`SingleCoilMRI.zero_filled` / the adjoint discard them.

Engine. Own ``torch.fft`` code rather than deepinv's ``MRI``/``MultiCoilMRI``: both compute the
same ``fft2(norm="ortho")`` (outputs agree exactly in float32, single- and multi-coil) at about the
same speed, and our own code keeps float32/float64 inputs in their precision,
takes coil maps in the real layout, has an exact SVD pseudo-inverse, and does not depend on
deepinv's mask/coil conventions. The real/imaginary axis of the output is a view
(``view_as_real(...).movedim(-1, 1)``, not contiguous), which halves the cost of the conversion.

References: Lustig, Donoho & Pauly, "Sparse MRI", MRM 58:1182 (2007); Pruessmann et al., MRM
42:952 (1999); Zbontar et al., fastMRI, arXiv:1811.08839 (2018).
"""

from __future__ import annotations

import torch

from forward_models.base import ForwardModel, check_batch, check_damping, damped_svd_gain
from forward_models.coils import synthetic_coil_maps
from forward_models.errors import ForwardModelError
from forward_models.masks import cartesian_mask, realised_acceleration
from forward_models.singular_basis import FourierBasis, RowBasis

__all__ = ["SingleCoilMRI", "MultiCoilMRI", "RealImageMRI", "fft2c", "ifft2c", "fft1c", "ifft1c"]

_DIMS = (-2, -1)


def fft2c(z: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D DFT over the last two axes of a complex tensor: ``fftshift(fft2(ifftshift(z)))``."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(z, dim=_DIMS), norm="ortho"), dim=_DIMS)


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c` (and its adjoint): ``fftshift(ifft2(ifftshift(k)))``, orthonormal."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS)


def fft1c(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Centred orthonormal 1-D DFT along ``dim`` (the 1-D factor of :func:`fft2c`)."""
    return torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(z, dim=dim), dim=dim, norm="ortho"), dim=dim)


def ifft1c(k: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Inverse of :func:`fft1c`: centred orthonormal 1-D inverse DFT along ``dim``."""
    return torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(k, dim=dim), dim=dim, norm="ortho"), dim=dim)


def _complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, ...) real -> (B, ...) complex (one copy)."""
    return torch.view_as_complex(x.movedim(1, -1).contiguous())


def _real(z: torch.Tensor) -> torch.Tensor:
    """(B, ...) complex -> (B, 2, ...) real: a view (not contiguous), no copy.

    (``torch.stack([z.real, z.imag], 1)`` would cost another pass over the data.)
    """
    return torch.view_as_real(z.resolve_conj()).movedim(-1, 1)


def _prepare_mask(mask, height, who: str) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.is_complex():
        raise ForwardModelError(f"{who}: the mask must be real 0/1, got a complex tensor")
    if mask.ndim == 1:
        mask = mask[None, :]
    if mask.ndim != 2 or mask.numel() == 0:
        raise ForwardModelError(f"{who}: the mask must have shape (H, W), or (W,) / (1, W) with height=H; "
                                f"got {tuple(mask.shape)}")
    if mask.shape[0] == 1 and height is not None:
        if int(height) < 1:
            raise ForwardModelError(f"{who}: height must be a positive integer, got {height}")
        mask = mask.expand(int(height), mask.shape[1])
    elif height is not None and int(height) != mask.shape[0]:
        raise ForwardModelError(f"{who}: height={height} disagrees with the mask's {mask.shape[0]} rows")
    if min(mask.shape) < 2:
        raise ForwardModelError(f"{who}: the image must be at least 2x2, got a mask of shape {tuple(mask.shape)} "
                                f"(pass height=H with a (W,) column mask)")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ForwardModelError(f"{who}: the mask must contain only 0 (not measured) and 1 (measured)")
    if not bool(mask.any()):
        raise ForwardModelError(f"{who}: the mask samples no k-space entry")
    dtype = mask.dtype if mask.is_floating_point() else torch.get_default_dtype()
    return mask.to(dtype).contiguous()


def _mask_config(mask: torch.Tensor) -> dict:
    """JSON description of a mask: realised acceleration, and the sampled columns of a Cartesian one."""
    out = {"acceleration_realised": realised_acceleration(mask)}
    cols = mask[0]
    if bool((mask == cols[None, :]).all()):
        out["sampled_columns"] = [int(j) for j in torch.nonzero(cols).flatten()]
    return out


class _CartesianMRI(ForwardModel):
    linear = True
    differentiable = True

    def _init_mask(self, mask, height):
        self.register_buffer("mask", _prepare_mask(mask, height, type(self).__name__))
        self.img_size = tuple(int(s) for s in self.mask.shape)
        self._mask_spec = None

    def _maps128(self) -> torch.Tensor:
        """Coil sensitivities ``(C, H, W)`` in complex128 (one coil of ones for single-coil MRI)."""
        raise NotImplementedError

    def _stamp(self) -> tuple:
        """Key of the per-row factor caches: device, storage and version counter of every buffer,
        so ``.to()`` or an in-place change (a re-estimated coil map) invalidates them."""
        return tuple((b.device, b.data_ptr(), b._version) for b in self.buffers())

    def _row_matrices(self):
        """Per-row matrices ``(K, E)`` of a column mask, or None for another mask.

        With whole columns ``K`` sampled, the inverse DFT along the fully sampled ``H`` axis turns
        ``y = M F (S_c x)`` into ``H`` independent 1-D problems ``b_h = E_h x_h``, one per image row,
        with ``E_h = [M_K F_W diag(S_c[h, :])]_c`` of shape ``(C n, W)`` (``n = |K|``), returned
        stacked as ``E`` ``(H, C n, W)`` in complex128; :meth:`_row_data` gives the matching ``b``."""
        cols = self.mask[0]
        if not bool((self.mask == cols[None, :]).all()):
            return None
        H, W = self.img_size
        K = torch.nonzero(cols).flatten()
        FW = fft1c(torch.eye(W, dtype=torch.complex128, device=self.mask.device), dim=0)  # column j = F_W e_j
        S = self._maps128()  # (C, H, W)
        E = FW[K][None, None, :, :] * S.permute(1, 0, 2)[:, :, None, :]  # (H, C, n, W)
        return K, E.reshape(H, S.shape[0] * K.numel(), W)

    def _row_svd(self, real: bool = False):
        """Per-row SVD factors ``(K, U, s, Vh)`` of :meth:`_row_matrices`, None for a non-column mask.

        ``real=False``: SVDs of the complex ``E_h`` (complex image input). ``real=True``: SVDs of the
        real ``(2 C n, W)`` matrices ``[Re E_h; Im E_h]``, the restriction to real images
        (:class:`RealImageMRI`). Computed once in 128-bit precision and cached, keyed by
        :meth:`_stamp`, so ``.to()`` or an in-place change to the mask or the coil maps (a
        re-estimated coil map) recomputes them."""
        stamp = self._stamp()
        cache = getattr(self, "_svd_cache", None)
        if cache is None or cache[0] != stamp:
            cache = self._svd_cache = (stamp, {})
        if real not in cache[1]:
            rows = self._row_matrices()
            factors = None
            if rows is not None:
                K, E = rows
                U, s, Vh = torch.linalg.svd(torch.cat([E.real, E.imag], 1) if real else E, full_matrices=False)
                factors = (K, U, s, Vh)
            cache[1][real] = factors
        return cache[1][real]

    def _row_pseudo_inverse(self, y: torch.Tensor, damping: float, real: bool = False):
        """``V_h diag(s / (s^2 + damping)) U_h^H b_h`` for every row through :meth:`_row_svd`: ``(B, H, W)``,
        complex (``real=False``) or real (``real=True``, the real-input problem with right-hand sides
        ``[Re b_h; Im b_h]``); None for a non-column mask."""
        factors = self._row_svd(real)
        if factors is None:
            return None
        K, U, s, Vh = factors
        b = self._row_data(y, K)  # (B, H, C n) complex
        if real:
            b = torch.cat([b.real, b.imag], -1)  # (B, H, 2 C n)
            U, Vh = U.to(y.dtype), Vh.to(y.dtype)
        else:
            ctype = torch.complex128 if y.dtype == torch.float64 else torch.complex64
            U, Vh = U.conj().to(ctype), Vh.conj().to(ctype)
        z = torch.einsum("hmr,bhm->bhr", U, b) * damped_svd_gain(s, damping).to(y.dtype)
        return torch.einsum("hrw,bhr->bhw", Vh, z)

    def _row_data(self, y: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """Right-hand sides ``b`` ``(B, H, C n)`` (complex) of the per-row problems of :meth:`_row_matrices`."""
        check_batch(y, self.output_shape, "measurement")
        z = _complex(y * self.mask.to(y.dtype))
        if z.ndim == 3:  # single coil: (B, H, W) -> (B, 1, H, W)
            z = z[:, None]
        b = ifft1c(z, dim=-2)[..., K]  # (B, C, H, n)
        B, C, H, n = b.shape
        return b.permute(0, 2, 1, 3).reshape(B, H, C * n)

    def config(self):
        """Configuration: image size, mask summary and, if built by ``cartesian``, the mask recipe."""
        cfg = {**super().config(), "class": type(self).__name__, "img_size": list(self.img_size),
               **_mask_config(self.mask)}
        if self._mask_spec is not None:
            cfg["mask_spec"] = dict(self._mask_spec)
        return cfg


class SingleCoilMRI(_CartesianMRI):
    """Single-coil Cartesian MRI ``y = M F x``: input ``(2, H, W)`` image, output ``(2, H, W)`` k-space.

    ``F`` is the centred orthonormal 2-D DFT (unitary), ``M`` a 0/1 mask of shape ``(H, W)``
    (or a ``(W,)`` / ``(1, W)`` column mask broadcast over ``height`` rows). Real and imaginary
    parts are the leading axis of length 2 (see the module docstring). Dimensionless: k-space
    values are in the image's units (the orthonormal DFT preserves the norm).

    - ``adjoint(y) = F^H M y``;
    - ``pseudo_inverse(y, damping) = F^H M y / (1 + damping)`` exactly, since ``A A^H = M`` is a
      projection: ``A^H (M + damping I)^{-1} y = F^H M y / (1 + damping)``;
    - ``zero_filled(y) = F^H M y``, the classical zero-filled reconstruction (the adjoint).

    Example::

        import torch
        from forward_models.mri import SingleCoilMRI
        op = SingleCoilMRI.cartesian(64, acceleration=4, center_fraction=0.08, kind="random", seed=0)
        x = op.example_input(2)                # (2, 2, 64, 64) float64
        y = op(x)                              # (2, 2, 64, 64): masked centred k-space
        x0 = op.zero_filled(y)                 # (2, 2, 64, 64)
    """

    def __init__(self, mask, *, height: int | None = None, device=None):
        super().__init__()
        self._init_mask(mask, height)
        self.input_shape = self.output_shape = (2, *self.img_size)
        if device is not None:
            self.to(device)

    @classmethod
    def cartesian(cls, size, acceleration: float = 4, center_fraction: float = 0.08, kind: str = "random",
                  seed: int = 0, *, device=None) -> SingleCoilMRI:
        """Operator with a :func:`~forward_models.masks.cartesian_mask`; the recipe is kept in ``config()``."""
        mask = cartesian_mask(size, acceleration, center_fraction, kind, seed)
        op = cls(mask, device=device)
        op._mask_spec = {"acceleration": float(acceleration), "center_fraction": float(center_fraction),
                         "kind": kind, "seed": int(seed)}
        return op

    def _maps128(self) -> torch.Tensor:
        return torch.ones(1, *self.img_size, dtype=torch.complex128, device=self.mask.device)

    def forward(self, x):
        """``M F x`` for a batch ``(B, 2, H, W)`` -> ``(B, 2, H, W)``."""
        return _real(fft2c(_complex(x)) * self.mask.to(x.dtype))

    def adjoint(self, y):
        """``F^H M y`` for a batch ``(B, 2, H, W)`` -> ``(B, 2, H, W)``."""
        check_batch(y, self.output_shape, "measurement")
        return _real(ifft2c(_complex(y * self.mask.to(y.dtype))))

    def pseudo_inverse(self, y, *, damping: float = 0.0, **_):
        """Closed form ``F^H M y / (1 + damping)`` (``A^+ y`` at zero damping)."""
        damping = check_damping(damping)
        return self.adjoint(y) / (1.0 + damping)

    def zero_filled(self, y):
        """Zero-filled reconstruction ``F^H M y``: unmeasured k-space set to zero, inverse DFT."""
        return self.adjoint(y)

    def singular_basis(self) -> FourierBasis:
        """The closed-form singular basis: the sampled Fourier modes, ``s = 1``
        (:class:`~forward_models.singular_basis.FourierBasis`)."""
        return FourierBasis(self)


class MultiCoilMRI(_CartesianMRI):
    """Multi-coil (SENSE) Cartesian MRI ``y_c = M F (S_c x)``: input ``(2, H, W)``, output ``(2, C, H, W)``.

    ``coil_maps``: complex sensitivities ``S`` as a real tensor ``(2, C, H, W)`` (real, imaginary;
    the layout :func:`forward_models.coils.synthetic_coil_maps` returns) or a complex ``(C, H, W)``
    tensor. They need not be normalised, but with ``sum_c |S_c|^2 = 1`` the fully sampled operator
    is an isometry. Mask as for :class:`SingleCoilMRI`.

    - ``adjoint(y) = sum_c conj(S_c) F^H M y_c``;
    - ``zero_filled(y) = sum_c conj(S_c) F^H M y_c / sum_c |S_c|^2`` (SENSE coil combination of
      the zero-filled coil images; 0 where no coil sees the pixel), equal to the adjoint for
      normalised maps and exact on a fully sampled mask;
    - ``pseudo_inverse(y, damping)``: exact ``A^H (A A^H + damping I)^{-1} y``. For a Cartesian
      (whole-column) mask the inverse DFT along the fully sampled ``H`` axis decouples the problem
      into ``H`` independent 1-D problems, one per image row ``h``, with the ``(C n) x W`` matrix
      ``E_h = [M_K F_W diag(S_c[h, :])]_c`` (``n`` sampled columns ``K``); their SVDs
      ``E_h = U_h diag(s_h) V_h^H`` (computed once, lazily, in complex128) give
      ``x_h = V_h diag(s / (s^2 + damping)) U_h^H b_h`` (singular values below ``1e-12 s_max``
      dropped at zero damping). Other masks fall back to the generic conjugate-gradient solver of
      :class:`ForwardModel`, which converges slowly when ``acceleration`` approaches ``C``
      (the SENSE g-factor).

    Example::

        import torch
        from forward_models.mri import MultiCoilMRI
        op = MultiCoilMRI.cartesian(64, acceleration=4, num_coils=8, seed=0)
        y = op(op.example_input(2))            # (2, 2, 8, 64, 64)
        x0 = op.zero_filled(y)                 # (2, 2, 64, 64)
    """

    def __init__(self, mask, coil_maps, *, height: int | None = None, device=None):
        super().__init__()
        self._init_mask(mask, height)
        S = torch.as_tensor(coil_maps)
        if S.is_complex():
            if S.ndim != 3:
                raise ForwardModelError("MultiCoilMRI: complex coil maps must have shape (C, H, W), got "
                                        f"{tuple(S.shape)}")
            S = torch.stack([S.real, S.imag], 0)
        elif S.ndim != 4 or S.shape[0] != 2:
            raise ForwardModelError(f"MultiCoilMRI: real coil maps must have shape (2, C, H, W) (real, imaginary), "
                                    f"got {tuple(S.shape)}")
        if not S.is_floating_point():
            S = S.to(torch.get_default_dtype())
        if tuple(S.shape[2:]) != self.img_size:
            raise ForwardModelError(f"MultiCoilMRI: coil maps of image size {tuple(S.shape[2:])} do not match "
                                    f"the mask's {self.img_size}")
        if S.shape[1] < 1:
            raise ForwardModelError("MultiCoilMRI: at least one coil map is needed")
        if not bool(torch.isfinite(S).all()):
            raise ForwardModelError("MultiCoilMRI: the coil maps contain NaN or Inf")
        self.register_buffer("coil_maps", S.contiguous())
        self.num_coils = int(S.shape[1])
        self._coil_spec = None
        self.input_shape = (2, *self.img_size)
        self.output_shape = (2, self.num_coils, *self.img_size)
        if device is not None:
            self.to(device)

    @classmethod
    def cartesian(cls, size, acceleration: float = 4, center_fraction: float = 0.08, kind: str = "random",
                  seed: int = 0, *, num_coils: int = 8, coil_seed: int | None = None, device=None) -> MultiCoilMRI:
        """Operator with a :func:`~forward_models.masks.cartesian_mask` and
        :func:`~forward_models.coils.synthetic_coil_maps` (float64); both recipes are kept in ``config()``."""
        mask = cartesian_mask(size, acceleration, center_fraction, kind, seed)
        H, W = mask.shape
        S = synthetic_coil_maps(num_coils, H, W, seed=coil_seed, dtype=torch.float64)
        op = cls(mask, S, device=device)
        op._mask_spec = {"acceleration": float(acceleration), "center_fraction": float(center_fraction),
                         "kind": kind, "seed": int(seed)}
        op._coil_spec = {"generator": "synthetic_coil_maps", "num_coils": int(num_coils), "seed": coil_seed}
        return op

    def _maps(self, dtype) -> torch.Tensor:
        S = self.coil_maps.to(dtype)
        return torch.complex(S[0], S[1])  # (C, H, W)

    def forward(self, x):
        """``M F (S_c x)`` for a batch ``(B, 2, H, W)`` -> ``(B, 2, C, H, W)``."""
        z = _complex(x)[:, None] * self._maps(x.dtype)  # (B, C, H, W)
        return _real(fft2c(z) * self.mask.to(x.dtype))

    def _coil_images(self, y):
        check_batch(y, self.output_shape, "measurement")
        return ifft2c(_complex(y * self.mask.to(y.dtype)))  # (B, C, H, W)

    def adjoint(self, y):
        """``sum_c conj(S_c) F^H M y_c`` for a batch ``(B, 2, C, H, W)`` -> ``(B, 2, H, W)``."""
        return _real((self._maps(y.dtype).conj() * self._coil_images(y)).sum(1))

    def _maps128(self) -> torch.Tensor:
        return torch.complex(self.coil_maps[0].double(), self.coil_maps[1].double())

    def prepare_pseudo_inverse(self) -> None:
        """Compute the per-row SVDs (:meth:`_row_svd`) the exact pseudo-inverse uses, if the mask has columns."""
        self._row_svd()

    def pseudo_inverse(self, y, *, damping: float = 0.0, **kwargs):
        """Exact ``A^H (A A^H + damping I)^{-1} y`` through per-row SVDs (Cartesian masks; CG otherwise)."""
        damping = check_damping(damping)
        x = self._row_pseudo_inverse(y, damping)
        if x is None:
            return super().pseudo_inverse(y, damping=damping, **kwargs)
        return _real(x)

    def singular_basis(self) -> RowBasis | None:
        """The per-row singular basis of a column mask (:class:`~forward_models.singular_basis.RowBasis`, complex
        images), ``None`` for another mask."""
        return RowBasis(self, real=False) if self._row_svd(real=False) is not None else None

    def zero_filled(self, y):
        """SENSE-combined zero-filled reconstruction ``sum_c conj(S_c) F^H M y_c / sum_c |S_c|^2``."""
        S = self._maps(y.dtype)
        num = (S.conj() * self._coil_images(y)).sum(1)
        den = (S.abs() ** 2).sum(0)
        ok = den > 1e-12 * den.max()
        return _real(torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num)))

    def config(self):
        """Configuration: as :class:`SingleCoilMRI` plus the number of coils and, if any, their recipe."""
        cfg = {**super().config(), "num_coils": self.num_coils}
        if self._coil_spec is not None:
            cfg["coil_spec"] = dict(self._coil_spec)
        return cfg


class RealImageMRI(ForwardModel):
    """An MRI operator restricted to real images: ``x (1, H, W) -> A [x; 0]``.

    Magnitude-like images (phantoms, the ``phantoms-64`` prior) are real; the scanner's operator
    ``A`` (:class:`SingleCoilMRI` or :class:`MultiCoilMRI`) acts on complex images ``(2, H, W)``.
    This wrapper embeds ``x`` as the real part (imaginary part zero), so ``F(x) = A E x`` with
    ``E x = [x; 0]``; its adjoint for the real inner product is ``E^T A^T y = Re(A^H y)``.
    ``pseudo_inverse(y, damping)`` is the exact ``(A E)^T ((A E)(A E)^T + damping I)^{-1} y`` for a
    column mask (per-row real SVDs, computed once and cached; much faster and more accurate than
    conjugate gradients, which need not converge for small damping: ``docs/benchmarks/components.md``,
    pseudo-inverse table), conjugate gradients otherwise.

    Example::

        from forward_models.mri import SingleCoilMRI, RealImageMRI
        op = RealImageMRI(SingleCoilMRI.cartesian(64, acceleration=4, seed=0))
        y = op(torch.rand(1, 1, 64, 64))          # (1, 2, 64, 64) k-space
        x_zf = op.zero_filled(y)                   # (1, 1, 64, 64) real part of F^H M y
    """

    linear = True
    differentiable = True

    def __init__(self, operator: _CartesianMRI):
        super().__init__()
        if not isinstance(operator, _CartesianMRI):
            raise TypeError(f"RealImageMRI wraps SingleCoilMRI or MultiCoilMRI, got {type(operator).__name__}")
        self.operator = operator
        self.input_shape = (1, *operator.img_size)
        self.output_shape = tuple(operator.output_shape)

    def forward(self, x):
        """``A [x; 0]`` for a batch ``(B, 1, H, W)``."""
        return self.operator(torch.cat([x, torch.zeros_like(x)], 1))

    def adjoint(self, y):
        """``Re(A^H y)``: the real channel of the complex adjoint, ``(B, 1, H, W)``."""
        return self.operator.adjoint(y)[:, :1]

    def _row_svd(self):
        """Per-row SVD factors of the real-input problem (``[Re E_h; Im E_h]``), cached on the wrapped
        operator (:meth:`_CartesianMRI._row_svd` with ``real=True``); None unless it has a column mask."""
        return self.operator._row_svd(real=True)

    def prepare_pseudo_inverse(self) -> None:
        """Compute the per-row SVDs of the real-input problem (:meth:`_row_svd`), if the mask has columns."""
        self._row_svd()

    def pseudo_inverse(self, y, *, damping: float = 0.0, **kwargs):
        """Exact ``A^T (A A^T + damping I)^{-1} y`` for real images through per-row SVDs.

        For a column mask the inverse DFT along the fully sampled axis (orthogonal, also as a real
        map) splits the problem into one real least-squares problem per image row,
        ``[Re b_h; Im b_h] = [Re E_h; Im E_h] x_h``; with their SVDs ``U_h diag(s_h) V_h^T``,
        ``x_h = V_h diag(s / (s^2 + damping)) U_h^T [Re b_h; Im b_h]`` (cut-off ``1e-12 s_max`` at
        zero damping). Single- and multi-coil alike; other masks use conjugate gradients."""
        damping = check_damping(damping)
        x = self.operator._row_pseudo_inverse(y, damping, real=True)
        if x is None:
            return super().pseudo_inverse(y, damping=damping, **kwargs)
        return x[:, None]

    def singular_basis(self) -> RowBasis | None:
        """The per-row singular basis of a column mask for real images
        (:class:`~forward_models.singular_basis.RowBasis`), ``None`` for another mask."""
        return RowBasis(self.operator, real=True) if self._row_svd() is not None else None

    def zero_filled(self, y):
        """Real part of the operator's zero-filled (adjoint) reconstruction."""
        return self.adjoint(y)

    def config(self):
        """Configuration of the wrapped operator, with the real input recorded."""
        return {**super().config(), "class": "RealImageMRI", "operator": self.operator.config()}


def _example_real(seed: int) -> RealImageMRI:
    return RealImageMRI(SingleCoilMRI.cartesian(16, acceleration=4, center_fraction=0.125, kind="random", seed=seed))


# --------------------------------------------------------------------------- registry entries

def _example_single(seed: int) -> SingleCoilMRI:
    return SingleCoilMRI.cartesian(16, acceleration=4, center_fraction=0.125, kind="random", seed=seed)


def _example_multi(seed: int) -> MultiCoilMRI:
    # equispaced 2x with 4 coils: SENSE condition number ~17, so the contract suite's generic
    # conjugate-gradient pseudo-inverse converges (random 4x/8 coils at 16x16: ~2e3, it does not)
    return MultiCoilMRI.cartesian(16, acceleration=2, center_fraction=0.125, kind="equispaced", seed=seed,
                                  num_coils=4, coil_seed=seed)


def _benchmark_single() -> SingleCoilMRI:
    return SingleCoilMRI.cartesian(64, acceleration=4, center_fraction=0.08, kind="random", seed=0)


def _benchmark_multi() -> MultiCoilMRI:
    return MultiCoilMRI.cartesian(64, acceleration=4, center_fraction=0.08, kind="random", seed=0,
                                  num_coils=8, coil_seed=0)


#: name -> class, small seeded example builder, benchmark-size builder (64x64, 4x; 8 coils)
REGISTRY_ENTRIES = {
    "mri": {"cls": SingleCoilMRI, "example": _example_single, "benchmark": _benchmark_single},
    "mri-multicoil": {"cls": MultiCoilMRI, "example": _example_multi, "benchmark": _benchmark_multi},
    "mri-real": {"cls": RealImageMRI, "example": _example_real},
}
