"""Small linear operators: a dense matrix and a masking (inpainting) operator.

``MatrixOperator``: ``y = A x`` with ``A`` of shape (dy, d), its SVD ``A = U diag(s) V^T`` (computed on
each call of ``svd()``) for samplers that work in the singular basis (MCGdiff, Cardoso et al. 2024) and for the exact
(damped) pseudo-inverse ``V diag(s / (s^2 + damping)) U^T`` (``A^+`` at zero damping).

``Inpainting``: ``y = M * x`` with a binary mask ``M`` of the sample's shape (1 = measured);
self-adjoint and its own pseudo-inverse.
"""

from __future__ import annotations

import torch

from forward_models.base import ForwardModel, check_batch, check_damping, damped_svd_gain
from forward_models.errors import ForwardModelError

__all__ = ["MatrixOperator", "Inpainting"]


class MatrixOperator(ForwardModel):
    """Dense linear forward model ``y = A x`` on vectors (``input_shape = (d,)``).

    Example::

        import torch
        from forward_models import MatrixOperator
        op = MatrixOperator(torch.randn(2, 5))
        y = op(torch.randn(8, 5))          # (8, 2)
        x_back = op.adjoint(y)             # (8, 5)
    """

    linear = True
    differentiable = True

    def __init__(self, A, *, device=None, dtype=None):
        super().__init__()
        A = torch.as_tensor(A)
        if dtype is not None or not A.is_floating_point():
            A = A.to(dtype if dtype is not None else torch.get_default_dtype())
        if A.ndim != 2 or A.numel() == 0:
            raise ForwardModelError(f"MatrixOperator needs a non-empty 2-D matrix, got shape {tuple(A.shape)}")
        if not bool(torch.isfinite(A).all()):
            raise ForwardModelError("MatrixOperator: the matrix contains NaN or Inf")
        self.register_buffer("A", A)
        self.input_shape = (A.shape[1],)
        self.output_shape = (A.shape[0],)
        if device is not None:
            self.to(device)

    def forward(self, x):
        """``x @ A^T`` for a batch (B, d)."""
        return x @ self.A.to(x.dtype).T

    def adjoint(self, y):
        """``y @ A`` for a batch (B, dy)."""
        check_batch(y, self.output_shape, "measurement")
        return y @ self.A.to(y.dtype)

    def svd(self):
        """Thin SVD ``(U, s, Vh)`` of ``A`` (float64), with ``A = U diag(s) Vh``.

        Computed once and kept, keyed by ``A``'s device, storage and version counter, so ``.to()`` or an
        in-place change to ``A`` recomputes it (MCG's projection calls :meth:`pseudo_inverse` every
        step); not kept when ``A`` requires grad. The tensors are shared between calls: do not modify
        them in place.
        """
        if self.A.requires_grad:  # differentiable in A: a fresh decomposition (and graph) per call
            return torch.linalg.svd(self.A.to(torch.float64), full_matrices=False)
        key = (str(self.A.device), self.A.data_ptr(), self.A._version)
        cached = self.__dict__.get("_svd_cache")
        if cached is None or cached[0] != key:
            cached = (key, torch.linalg.svd(self.A.to(torch.float64), full_matrices=False))
            self.__dict__["_svd_cache"] = cached
        return cached[1]

    def prepare_pseudo_inverse(self) -> None:
        """Compute the SVD (:meth:`svd`) the pseudo-inverse uses."""
        self.svd()

    def pseudo_inverse(self, y, *, damping: float = 0.0, **_):
        """Exact ``A^T (A A^T + damping I)^{-1} y = V diag(s / (s^2 + damping)) U^T y`` through the SVD.

        With ``damping = 0``: ``A^+ y`` (singular values below ``1e-12 * s_max`` dropped).
        """
        check_batch(y, self.output_shape, "measurement")
        damping = check_damping(damping)
        U, s, Vh = self.svd()
        return (((y.to(torch.float64) @ U) * damped_svd_gain(s, damping)) @ Vh).to(y.dtype)

    def matrix(self):
        """The matrix ``A`` itself."""
        return self.A

    def config(self):
        """Configuration; the matrix itself is stored as data by the NetCDF writers."""
        return {**super().config(), "class": "MatrixOperator"}


class Inpainting(ForwardModel):
    """Masking operator ``y = mask * x`` (1 = measured, 0 = missing); output keeps the input's shape.

    Example::

        import torch
        from forward_models import Inpainting
        mask = (torch.rand(1, 8, 8) > 0.5).float()
        op = Inpainting(mask)
        y = op(torch.randn(2, 1, 8, 8))
    """

    linear = True
    differentiable = True

    def __init__(self, mask, *, device=None):
        super().__init__()
        mask = torch.as_tensor(mask)
        if mask.numel() == 0:
            raise ForwardModelError("Inpainting: the mask is empty")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ForwardModelError("Inpainting: the mask must contain only 0 (missing) and 1 (measured)")
        self.register_buffer("mask", mask.to(torch.get_default_dtype()))
        self.input_shape = self.output_shape = tuple(mask.shape)
        if device is not None:
            self.to(device)

    def forward(self, x):
        """``mask * x``."""
        return x * self.mask.to(x.dtype)

    def adjoint(self, y):
        """``mask * y`` (the operator is self-adjoint)."""
        check_batch(y, self.output_shape, "measurement")
        return y * self.mask.to(y.dtype)

    def pseudo_inverse(self, y, *, damping: float = 0.0, **_):
        """``mask * y / (1 + damping)``: a projection is its own pseudo-inverse."""
        return self.adjoint(y) / (1.0 + check_damping(damping))

    def config(self):
        """Configuration; the mask is stored as data by the NetCDF writers."""
        return {**super().config(), "class": "Inpainting", "fraction_measured": float(self.mask.mean())}
