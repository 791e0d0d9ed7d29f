"""The forward-model contract: ``F: x -> y`` on batches, in physical units.

A :class:`ForwardModel` is a ``torch.nn.Module`` whose ``forward`` maps a batch ``(B, *input_shape)``
to noise-free measurements ``(B, *output_shape)``. Flags tell samplers what they may rely on:

- ``linear``: ``F(x) = A x``; then :meth:`adjoint` (``A^T``) and :meth:`pseudo_inverse` (``A^+``) exist;
- ``differentiable``: autograd (or a custom adjoint) gives ``J^T v``; black-box simulators set it False;
- :meth:`coarse`: a cheaper, less accurate level where one exists (two-level MCMC).

Noise lives apart, in :mod:`forward_models.noise`; the pair meets in
:class:`forward_models.problem.InverseProblem`.
"""

from __future__ import annotations

import math

import torch

from forward_models.errors import ForwardModelError

__all__ = ["GRAM_CUTOFF", "ForwardModel", "check_batch", "check_damping", "damped_svd_gain"]

#: relative cut-off of singular values taken from a Gram matrix's eigenvalues (absolute error ~ eps s_max^2):
#: weaker directions are not resolved and are treated as unobserved
#: (forward_models.linalg, ParallelBeamCT.pseudo_inverse)
GRAM_CUTOFF = 1e-5


def check_batch(x: torch.Tensor, shape: tuple[int, ...], what: str = "input") -> None:
    """Raise ``ValueError`` unless ``x`` is a tensor batch ``(B, *shape)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"the forward model's {what} must be a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(shape) or x.ndim != len(shape) + 1:
        want = ", ".join(["B"] + [str(s) for s in shape])
        raise ForwardModelError(f"the forward model's {what} must have shape ({want}), got {tuple(x.shape)}")


def check_damping(damping) -> float:
    """``damping`` of a damped pseudo-inverse as a float; ``ValueError`` unless it is ``>= 0`` (NaN included)."""
    try:
        damping = float(damping)
    except (TypeError, ValueError):
        raise ForwardModelError(f"damping must be a non-negative number, got {damping!r}") from None
    if not damping >= 0:
        raise ForwardModelError(f"damping must be non-negative, got {damping}")
    return damping


def damped_svd_gain(s: torch.Tensor, damping: float) -> torch.Tensor:
    """Gain per singular value of the damped pseudo-inverse ``A^T (A A^T + damping I)^{-1} = V diag(g) U^T``:
    ``g = s / (s^2 + damping)``; at zero damping ``1 / s``, with values below ``1e-12 s_max`` dropped
    (the pseudo-inverse's cut-off)."""
    if damping > 0:
        return s / (s**2 + damping)
    return torch.where(s > 1e-12 * s.max(), 1.0 / s, torch.zeros_like(s))


class ForwardModel(torch.nn.Module):
    """Base class of forward models ``y = F(x)`` (noise-free, batched, physical units).

    Subclasses set ``input_shape`` and ``output_shape`` (one sample, no batch dimension) and
    implement :meth:`forward`; linear ones also :meth:`adjoint`. Calling the module checks the
    batch shape first, so a wrong shape fails with a one-line message instead of deep inside.

    Example: a new linear operator (a scaled identity) in ten lines::

        import torch
        from forward_models import ForwardModel

        class Scale(ForwardModel):
            linear = True
            def __init__(self, d, c):
                super().__init__()
                self.input_shape = self.output_shape = (d,)
                self.c = c
            def forward(self, x):
                return self.c * x
            def adjoint(self, y):
                return self.c * y

        y = Scale(3, 2.0)(torch.ones(4, 3))
    """

    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    linear: bool = False
    differentiable: bool = True

    #: check every input for NaN/Inf (one reduction per call; switch off in hot loops if measured to matter)
    check_finite: bool = True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, self.input_shape, "input")
        if self.check_finite and not bool(torch.isfinite(x).all()):
            raise ForwardModelError(f"the input to {type(self).__name__} contains NaN or Inf")
        return super().__call__(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Noise-free measurements of a batch ``(B, *input_shape)``."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``A^T y`` for a linear model; non-linear models raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} is not linear: it has no adjoint")

    def pseudo_inverse(self, y: torch.Tensor, *, damping: float = 0.0, iterations: int = 200,
                       tol: float = 1e-10) -> torch.Tensor:
        """Damped minimum-norm solution ``A^T (A A^T + damping I)^{-1} y`` of a linear model.

        With ``damping = 0`` this is the pseudo-inverse ``A^+ y``; with ``damping = sigma_y^2 / s^2``
        it is the Kalman (Tikhonov) update of a state with covariance ``s^2 I`` by a measurement with
        noise ``sigma_y``. Default: conjugate gradients (at most ``iterations``, relative residual
        ``tol``); subclasses with a closed form override it.

        - ``damping > 0``: CG on the symmetric positive definite ``(A A^T + damping I) z = y``,
          then ``x = A^T z``;
        - ``damping = 0``: ``A A^T`` is singular whenever ``A`` has dependent rows (a mask's unmeasured
          entries, CT's redundant rays), and noisy ``y`` has a component outside ``range(A)`` on which
          CG in measurement space diverges. The normal equations ``A^T A x = A^T y`` are consistent
          for every ``y``, and CG on them from ``x = 0`` stays in ``range(A^T)``, so it converges to
          the minimum-norm least-squares solution ``A^+ y`` (CGLS; Hestenes & Stiefel 1952;
          Paige & Saunders, ACM TOMS 8:43, 1982).

        Ill-conditioned operators (sparse-view CT, multi-coil MRI near the coil count) need more than
        the default iterations at small damping; the result is then the truncated-CG regularised
        solution, not the exact one.
        """
        if not self.linear:
            raise NotImplementedError(f"{type(self).__name__} is not linear: it has no pseudo-inverse")
        check_batch(y, self.output_shape, "measurement")
        damping = check_damping(damping)
        if damping > 0:
            z = _conjugate_gradients(lambda p: self.forward(self.adjoint(p)) + damping * p, y, iterations, tol)
            return self.adjoint(z)
        return _conjugate_gradients(lambda p: self.adjoint(self.forward(p)), self.adjoint(y), iterations, tol)

    def prepare_pseudo_inverse(self) -> None:
        """Compute and cache now the factors :meth:`pseudo_inverse` would compute on its first call (none
        for the generic conjugate gradients). Samplers that project (MCG) call it in their set-up, so
        that a one-off factorisation is timed as set-up, not as the first step."""

    def matrix(self) -> torch.Tensor:
        """Dense matrix of a linear model, shape ``(prod(output_shape), prod(input_shape))``.

        Built column by column by applying the operator to the identity: for small problems
        (the exact-posterior harness), not for images.
        """
        if not self.linear:
            raise NotImplementedError(f"{type(self).__name__} is not linear: it has no matrix")
        d = math.prod(self.input_shape)
        dev = next((t.device for t in list(self.parameters()) + list(self.buffers())), torch.device("cpu"))
        eye = torch.eye(d, dtype=torch.float64, device=dev).reshape(d, *self.input_shape)
        return self.forward(eye).reshape(d, -1).T

    def example_input(self, n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
        """A seeded batch ``(n, *input_shape)`` of valid inputs, for tests and benchmarks.

        Standard normal by default; models with a physical range (velocities, permeabilities)
        override it with draws from that range.
        """
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(int(n), *self.input_shape, generator=g, dtype=dtype)

    def coarse(self) -> ForwardModel:
        """A cheaper, less accurate version of this model (two-level MCMC). None by default."""
        raise NotImplementedError(f"{type(self).__name__} has no coarse level")

    def config(self) -> dict:
        """JSON-serialisable description of the model (stored in measurement and posterior files)."""
        return {"class": type(self).__name__, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape), "linear": self.linear,
                "differentiable": self.differentiable}


def _conjugate_gradients(apply, b: torch.Tensor, iterations: int, tol: float) -> torch.Tensor:
    """Batched conjugate gradients for ``apply(x) = b``, ``apply`` symmetric positive semi-definite
    (Hestenes & Stiefel 1952): one independent solve per batch row, from ``x = 0``.

    A row stops (its iterate frozen) once its residual is below ``max(tol, 16 eps)`` times its
    ``||b||`` (``eps`` of the dtype: a float32 residual stalls near ``1e-7``), or when the search
    direction has become numerically null, ``p^T A p <= 64 eps lambda_1 ||p||^2`` with ``lambda_1``
    the first Rayleigh quotient; iterating past either point only divides round-off by round-off,
    which in float32 blew the solution up by 1e8. All rows stop after ``iterations`` steps."""
    B = b.shape[0]
    shape = (B,) + (1,) * (b.ndim - 1)
    eps = torch.finfo(b.dtype).eps
    tol = max(float(tol), 16 * eps)
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).reshape(B, -1).sum(1)
    b_norm = rs.sqrt()
    active = b_norm > 0
    scale = None
    for _ in range(iterations):
        Ap = apply(p)
        pAp = (p * Ap).reshape(B, -1).sum(1)
        pp = (p * p).reshape(B, -1).sum(1)
        if scale is None:
            scale = torch.where(pp > 0, pAp / pp.clamp_min(1e-300), torch.zeros_like(pp))
        active = active & (pAp > 64 * eps * scale * pp)
        alpha = torch.where(active, rs / pAp.clamp_min(1e-300), torch.zeros_like(rs))
        x = x + alpha.reshape(shape) * p
        r = r - alpha.reshape(shape) * Ap
        rs_new = (r * r).reshape(B, -1).sum(1)
        active = active & (rs_new.sqrt() > tol * b_norm)
        if not bool(active.any()):
            break
        beta = torch.where(active, rs_new / rs.clamp_min(1e-300), torch.zeros_like(rs))
        p = r + beta.reshape(shape) * p
        rs = rs_new
    return x
