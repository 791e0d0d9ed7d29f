"""Steady Darcy flow: coefficient field -> pressure at sparse sensors (FNO convention).

On the unit square ``D = [0, 1]^2`` the pressure ``u`` solves

    -div(a grad u) = f  in D,        u = 0 on the boundary,

with source ``f = 1`` and permeability ``a > 0`` given by a parameter field ``x``: ``a = exp(x)``
(``x`` a log-permeability) or the two-phase FNO field ``a = 12 if x > 0 else 3`` (Li et al., ICLR 2021).
Non-dimensional units.

Discretisation: cell-centred finite volumes on an ``N x N`` grid of cells of side ``h = 1 / N``
(cell ``[i, j]`` centred at ``((i + 1/2) h, (j + 1/2) h)``: first spatial axis x, second y). The flux
through the face between cells P and Q is ``T_PQ (u_P - u_Q)`` with the transmissibility
``T_PQ = 2 a_P a_Q / (a_P + a_Q)`` (harmonic mean: exact for a piecewise-constant ``a`` in 1-D), and
through a boundary face ``2 a_P u_P`` (half-cell distance to the wall where ``u = 0``). Summing the
fluxes out of each cell gives the symmetric positive-definite system

    A(a) u = f h^2,      A = sum_faces T_PQ (e_P - e_Q)(e_P - e_Q)^T + sum_boundary faces 2 a_P e_P e_P^T,

second-order accurate in ``h`` for smooth ``a``. It is solved by a sparse LU factorisation
(``scipy.sparse.linalg.splu``) inside a custom autograd function: the adjoint ``lambda = A^{-T} dL/du``
reuses the factorisation, and ``dL/dT_PQ = -(lambda_P - lambda_Q)(u_P - u_Q)``, ``dL/dA_PP = -lambda_P u_P``
for the boundary terms; autograd carries these to ``a`` and ``x``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from forward_models.base import ForwardModel
from forward_models.errors import ForwardModelError

__all__ = ["DarcyFlow"]

_COEFFICIENTS = ("exp", "threshold", "sigmoid", "identity")
#: smallest permeability of coefficient="identity" (inputs below are clamped: the solve stays well posed)
_IDENTITY_FLOOR = 0.1
_HIGH, _LOW = 12.0, 3.0


class _FiniteVolumeMatrix:
    """Sparsity pattern of the ``m x m`` five-point finite-volume matrix, and its assembly in CSC form."""

    def __init__(self, m: int):
        self.m = m
        p = np.arange(m * m).reshape(m, m)
        self.x0, self.x1 = p[:-1, :].ravel(), p[1:, :].ravel()   # faces normal to x
        self.y0, self.y1 = p[:, :-1].ravel(), p[:, 1:].ravel()   # faces normal to y
        rows = np.concatenate([p.ravel(), self.x0, self.x1, self.y0, self.y1])
        cols = np.concatenate([p.ravel(), self.x1, self.x0, self.y1, self.y0])
        order = sp.coo_matrix((np.arange(1, rows.size + 1, dtype=np.float64), (rows, cols)),
                              shape=(m * m, m * m)).tocsc()
        self.perm = order.data.astype(np.int64) - 1   # canonical entry order -> CSC data order
        self.indices, self.indptr = order.indices, order.indptr

    def factorise(self, tx: np.ndarray, ty: np.ndarray, tb: np.ndarray):
        """splu of ``A`` from face transmissibilities ``tx`` (m-1, m), ``ty`` (m, m-1), wall terms ``tb`` (m, m)."""
        diag = tb.copy()
        diag[:-1, :] += tx
        diag[1:, :] += tx
        diag[:, :-1] += ty
        diag[:, 1:] += ty
        vals = np.concatenate([diag.ravel(), -tx.ravel(), -tx.ravel(), -ty.ravel(), -ty.ravel()])
        n = self.m * self.m
        A = sp.csc_matrix((vals[self.perm], self.indices, self.indptr), shape=(n, n))
        # symmetric positive definite: no pivoting needed, a symmetric fill-reducing ordering
        return spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                         options={"SymmetricMode": True})


class _DarcySolve(torch.autograd.Function):
    """``u = A(tx, ty, tb)^{-1} rhs`` per batch element, with the adjoint through the same LU factors."""

    @staticmethod
    def forward(ctx, tx, ty, tb, matrix: _FiniteVolumeMatrix, rhs: float):
        m = matrix.m
        to_np = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        txn, tyn, tbn = to_np(tx), to_np(ty), to_np(tb)
        b = np.full(m * m, rhs)
        lus, us = [], []
        for k in range(txn.shape[0]):
            lu = matrix.factorise(txn[k], tyn[k], tbn[k])
            lus.append(lu)
            us.append(lu.solve(b))
        ctx.lus, ctx.u = lus, np.stack(us).reshape(-1, m, m)  # float64 copy for the backward pass
        ctx.device, ctx.dtype = tx.device, tx.dtype
        return torch.from_numpy(ctx.u).to(device=tx.device, dtype=tx.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_u):
        un = ctx.u
        g = grad_u.detach().to("cpu", torch.float64).numpy()
        lam = np.stack([lu.solve(g[k].ravel(), trans="T") for k, lu in enumerate(ctx.lus)]).reshape(un.shape)
        gx = -(lam[:, :-1, :] - lam[:, 1:, :]) * (un[:, :-1, :] - un[:, 1:, :])
        gy = -(lam[:, :, :-1] - lam[:, :, 1:]) * (un[:, :, :-1] - un[:, :, 1:])
        gb = -lam * un
        back = lambda a: torch.from_numpy(a).to(device=ctx.device, dtype=ctx.dtype)  # noqa: E731
        return back(gx), back(gy), back(gb), None, None


def _sensor_interpolation(sensors: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (S, 4) into the zero-padded (m+2) x (m+2) cell array and bilinear weights (S, 4).

    Nodes along each axis: the walls 0 and 1 (where ``u = 0``) and the cell centres ``(k + 1/2) / m``.
    """
    nodes = torch.cat([torch.zeros(1, dtype=torch.float64), (torch.arange(m, dtype=torch.float64) + 0.5) / m,
                       torch.ones(1, dtype=torch.float64)])
    idx, frac = [], []
    for d in range(2):
        s = sensors[:, d].contiguous()
        i = (torch.searchsorted(nodes, s, right=True) - 1).clamp(0, m)
        idx.append(i)
        frac.append((s - nodes[i]) / (nodes[i + 1] - nodes[i]))
    (ix, iy), (tx, ty) = idx, frac
    w = m + 2
    flat = torch.stack([ix * w + iy, (ix + 1) * w + iy, ix * w + iy + 1, (ix + 1) * w + iy + 1], dim=1)
    weights = torch.stack([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty], dim=1)
    return flat, weights


class DarcyFlow(ForwardModel):
    """Parameter field ``x`` -> pressure ``u`` at sensors, for ``-div(a(x) grad u) = f``, ``u = 0`` on the boundary.

    Shapes: input ``(B, 1, N, N)`` (``x[b, 0, i, j]`` on cell ``((i + 1/2) / N, (j + 1/2) / N)``),
    output ``(B, S)``: ``u`` at ``S`` sensor points by bilinear interpolation between cell centres
    (and the walls, where ``u = 0``). Units: non-dimensional (unit square, f = 1 by default;
    pressures are ~0.01-0.07 for a ~ 1-10).

    Parameters
    ----------
    resolution : N, the grid of the input field (>= 2)
    coefficient : how ``x`` gives the permeability ``a``:
        ``"exp"``: ``a = exp(x)``, x a log-permeability (differentiable);
        ``"threshold"``: FNO two-phase, ``a = 12`` where ``x > 0`` else ``3`` - piecewise constant in
        ``x``, so its derivative is zero almost everywhere and the model is flagged ``differentiable=False``;
        ``"sigmoid"``: the smooth two-phase ``a = 3 + 9 sigmoid(x / sigmoid_width)`` (differentiable;
        equal to "threshold" up to cells with ``|x| <~ 5 sigmoid_width``);
        ``"identity"``: ``a = max(x, 0.1)``, x the permeability itself in physical units (the
        ``darcy-perm-32`` prior's samples, 3 / 12); the floor keeps the solve well posed for the
        rough intermediate estimates of a sampler (zero gradient below it)
    sensors : int n for an n x n regular grid at ``(k / (n + 1), l / (n + 1))``, k, l = 1..n (default
        7: 49 interior points), or an array (S, 2) of ``(x, y)`` coordinates in ``[0, 1]^2``
    source : the constant source f
    solver_resolution : cell grid the equation is solved on (divides N; default N). Coarser grids give
        :meth:`coarse`: ``a`` is restricted by its geometric mean over each coarse cell (the average
        of the log-permeability; the exact effective permeability of an isotropic log-symmetric
        medium in 2-D, Matheron 1967), the observations are read at the same sensor coordinates
    sigmoid_width : the transition width of ``coefficient="sigmoid"``

    Example::

        import torch
        from forward_models.darcy import DarcyFlow
        op = DarcyFlow(32, coefficient="exp", sensors=5)
        x = op.example_input(2, seed=0)                      # (2, 1, 32, 32) log-permeabilities
        y = op(x)                                            # (2, 25)
        x.requires_grad_(True)
        (g,) = torch.autograd.grad(op(x).sum(), x)           # adjoint through the LU factors
        y_coarse = op.coarse()(x.detach())                   # solved on 16 x 16, same shapes
    """

    linear = False
    differentiable = True

    def __init__(self, resolution: int = 64, *, coefficient: str = "exp", sensors=7, source: float = 1.0,
                 solver_resolution: int | None = None, sigmoid_width: float = 0.1, device=None):
        super().__init__()
        if int(resolution) != resolution or resolution < 2:
            raise ForwardModelError(f"DarcyFlow: resolution must be an integer >= 2, got {resolution}")
        n = int(resolution)
        if coefficient not in _COEFFICIENTS:
            raise ForwardModelError(f"DarcyFlow: unknown coefficient {coefficient!r} (known: "
                                    f"{', '.join(_COEFFICIENTS)})")
        m = n if solver_resolution is None else solver_resolution
        if int(m) != m or m < 2 or n % m:
            raise ForwardModelError("DarcyFlow: solver_resolution must be an integer >= 2 dividing the resolution "
                                    f"{n}, got {solver_resolution}")
        if not math.isfinite(source):
            raise ForwardModelError(f"DarcyFlow: the source must be finite, got {source}")
        if not (math.isfinite(sigmoid_width) and sigmoid_width > 0):
            raise ForwardModelError(f"DarcyFlow: sigmoid_width must be positive, got {sigmoid_width}")
        self.resolution, self.solver_resolution = n, int(m)
        self.coefficient, self.source, self.sigmoid_width = coefficient, float(source), float(sigmoid_width)
        self.differentiable = coefficient != "threshold"
        self._sensor_grid = None
        sensors_xy = self._sensor_coordinates(sensors)
        self.input_shape = (1, n, n)
        self.output_shape = (sensors_xy.shape[0],)
        flat, weights = _sensor_interpolation(sensors_xy, self.solver_resolution)
        self.register_buffer("sensors", sensors_xy)
        self.register_buffer("sensor_index", flat, persistent=False)
        self.register_buffer("sensor_weight", weights, persistent=False)
        m = self.solver_resolution
        walls = torch.zeros(m, m, dtype=torch.float64)  # number of boundary faces of each cell
        walls[0, :] += 1
        walls[-1, :] += 1
        walls[:, 0] += 1
        walls[:, -1] += 1
        self.register_buffer("walls", walls, persistent=False)
        self._matrix = _FiniteVolumeMatrix(m)
        if device is not None:
            self.to(device)

    def _sensor_coordinates(self, sensors) -> torch.Tensor:
        if isinstance(sensors, (int, np.integer)) and not isinstance(sensors, bool):
            if sensors < 1:
                raise ForwardModelError(f"DarcyFlow: the sensor grid needs at least 1 x 1 points, got {sensors}")
            self._sensor_grid = int(sensors)
            c = torch.arange(1, sensors + 1, dtype=torch.float64) / (sensors + 1)
            return torch.cartesian_prod(c, c)
        xy = torch.as_tensor(sensors, dtype=torch.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] < 1:
            raise ForwardModelError(f"DarcyFlow: sensors must be an int or an array of (x, y) pairs of shape (S, 2), "
                                    f"got shape {tuple(xy.shape)}")
        if not bool(torch.isfinite(xy).all()) or bool((xy < 0).any()) or bool((xy > 1).any()):
            raise ForwardModelError("DarcyFlow: sensor coordinates must lie in the unit square [0, 1]^2")
        return xy.clone()

    # ----------------------------------------------------------------------------------- physics
    def permeability(self, x: torch.Tensor) -> torch.Tensor:
        """The coefficient ``a(x)`` on the input grid, ``(B, 1, N, N)`` -> ``(B, 1, N, N)``."""
        if self.coefficient == "exp":
            return torch.exp(x)
        if self.coefficient == "identity":
            return x.clamp_min(_IDENTITY_FLOOR)
        if self.coefficient == "threshold":
            return torch.where(x > 0, torch.full_like(x, _HIGH), torch.full_like(x, _LOW))
        return _LOW + (_HIGH - _LOW) * torch.sigmoid(x / self.sigmoid_width)

    def _solver_permeability(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution // self.solver_resolution
        if r == 1:
            return self.permeability(x)[:, 0]
        log_a = x if self.coefficient == "exp" else torch.log(self.permeability(x))
        return torch.exp(F.avg_pool2d(log_a, r))[:, 0]  # geometric mean over each coarse cell

    def pressure(self, x: torch.Tensor) -> torch.Tensor:
        """The cell pressures ``u`` on the solver grid, ``(B, 1, N, N)`` -> ``(B, 1, m, m)``. Differentiable."""
        a = self._solver_permeability(x)
        if not bool(torch.isfinite(a).all()) or not bool((a > 0).all()):
            raise ForwardModelError("DarcyFlow: the permeability a(x) overflowed or underflowed (not finite and "
                                    f"positive); x ranges over [{float(x.min()):.3g}, {float(x.max()):.3g}]")
        tx = 2 * a[:, :-1, :] * a[:, 1:, :] / (a[:, :-1, :] + a[:, 1:, :])
        ty = 2 * a[:, :, :-1] * a[:, :, 1:] / (a[:, :, :-1] + a[:, :, 1:])
        tb = 2 * a * self.walls.to(a.dtype)
        h = 1.0 / self.solver_resolution
        return _DarcySolve.apply(tx, ty, tb, self._matrix, self.source * h * h)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``u`` at the sensors, ``(B, 1, N, N)`` -> ``(B, S)``."""
        u = F.pad(self.pressure(x)[:, 0], (1, 1, 1, 1))  # the walls, u = 0
        w = self.sensor_weight.to(u.dtype)
        return (u.reshape(u.shape[0], -1)[:, self.sensor_index] * w).sum(-1)

    # ----------------------------------------------------------------------------------- contract
    def coarse(self, factor: int = 2) -> DarcyFlow:
        """The same map solved on a grid ``factor`` times coarser (geometric-mean permeability; same shapes)."""
        m = self.solver_resolution
        if int(factor) != factor or factor < 2 or m % factor or m // factor < 2:
            raise ForwardModelError(f"DarcyFlow.coarse: factor must be an integer >= 2 dividing the solver grid {m} "
                                    f"and leaving at least 2 x 2 cells, got {factor}")
        return DarcyFlow(self.resolution, coefficient=self.coefficient, sensors=self._sensors_arg(),
                         source=self.source, solver_resolution=m // int(factor), sigmoid_width=self.sigmoid_width,
                         device=self.sensors.device)

    def _sensors_arg(self):
        return self._sensor_grid if self._sensor_grid is not None else self.sensors.cpu().tolist()

    def example_input(self, n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
        """Seeded FNO Darcy fields (Gaussian, covariance ``9 (-Lap + 9)^-2``, non-periodic), ``(n, 1, N, N)``.

        A log-permeability for ``"exp"`` (standard deviation ~0.23), the smooth two-phase permeability
        ``3 + 9 sigmoid(field / 0.1)`` for ``"identity"``, the field itself otherwise.
        """
        from forward_models.generators.grf import gaussian_random_field

        f = gaussian_random_field(int(n), self.resolution, alpha=2.0, tau=3.0, seed=seed, periodic=False, dtype=dtype)
        if self.coefficient == "identity":
            return _LOW + (_HIGH - _LOW) * torch.sigmoid(f / 0.1)
        return f

    def config(self) -> dict:
        """Constructor arguments plus the contract fields (JSON-serialisable)."""
        return {**super().config(), "class": "DarcyFlow", "convention": "FNO", "resolution": self.resolution,
                "coefficient": self.coefficient, "sensors": self._sensors_arg(), "source": self.source,
                "solver_resolution": self.solver_resolution, "sigmoid_width": self.sigmoid_width}


def _example(seed: int) -> DarcyFlow:
    return DarcyFlow(12, coefficient="exp", sensors=3)


def _benchmark() -> DarcyFlow:
    return DarcyFlow(64, coefficient="exp", sensors=7)


#: entries for forward_models.registry: name -> class, small example builder, documented-size builder
def _example_identity(seed: int) -> DarcyFlow:
    return DarcyFlow(12, coefficient="identity", sensors=3)


REGISTRY_ENTRIES = {"darcy": {"cls": DarcyFlow, "example": _example, "benchmark": _benchmark},
                    "darcy-identity": {"cls": DarcyFlow, "example": _example_identity}}
