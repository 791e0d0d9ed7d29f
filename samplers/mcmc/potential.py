"""The potential ``Phi(u) = -log p(y | G(T(u)))`` of one level of a function-space MCMC chain.

A chain moves a parameter ``u`` (KL coefficients, a field, a latent ``z``) under a Gaussian prior; a
:class:`Potential` composes a parameter map ``T`` (``u -> x`` in the forward model's physical units)
with an :class:`~forward_models.problem.InverseProblem`'s likelihood, so that the posterior is
``pi(du) ∝ exp(-Phi(u)) mu_0(du)`` (Stuart 2010, Acta Numerica 19, eq. 2.4). Levels of a multilevel
chain are potentials built from the same measurement with different forward models (a coarser grid,
a neural surrogate) or parameter maps (fewer ODE steps). Evaluations run without autograd, in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from forward_models.problem import InverseProblem
from samplers.errors import SamplerConfigError

__all__ = ["Potential", "reshape_map"]


def reshape_map(shape) -> Callable[[torch.Tensor], torch.Tensor]:
    """The parameter map ``u (B, d) -> u.reshape(B, *shape)``: the chain moves the forward model's input itself."""
    shape = tuple(int(s) for s in shape)

    def _reshape(u: torch.Tensor) -> torch.Tensor:
        return u.reshape(u.shape[0], *shape)

    return _reshape


class Potential:
    """``Phi(u) = -log p(y | G(T(u)))`` for a batch ``u (B, d)`` -> ``(B,)`` float64.

    Parameters
    ----------
    problem : the inverse problem at this level (its forward model may be a coarse or surrogate model)
    transform : parameter map ``T: (B, d) -> (B, *input_shape)``; default: reshape ``u`` to the input shape
    name : level name in diagnostics (``"fine"``, ``"coarse-grid"``, ``"surrogate"``)
    dtype : dtype of the forward model's input (float64 by default)

    Example::

        import torch
        from forward_models import MatrixOperator, Gaussian, InverseProblem
        from samplers.mcmc import Potential
        problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.1),
                                          torch.zeros(2, dtype=torch.float64), seed=0)
        phi = Potential(problem, name="fine")(torch.zeros(3, 2, dtype=torch.float64))   # (3,)
    """

    def __init__(self, problem: InverseProblem, transform: Callable | None = None, *, name: str = "level",
                 dtype: torch.dtype = torch.float64):
        if not isinstance(problem, InverseProblem):
            raise TypeError(f"Potential: problem must be an InverseProblem, got {type(problem).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError("Potential: transform must be callable (u -> forward-model input)")
        self.problem = problem
        self.transform = transform if transform is not None else reshape_map(problem.forward_model.input_shape)
        self.name, self.dtype = str(name), dtype

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """``Phi(u)`` for ``u (B, d)``; ``+inf`` where the forward model fails or returns non-finite values."""
        if u.ndim != 2:
            raise SamplerConfigError(f"Potential {self.name!r}: expected parameters of shape (B, d), got "
                                     f"{tuple(u.shape)}")
        with torch.no_grad():
            x = self.transform(u).to(self.dtype)
            try:
                ll = self.problem.log_likelihood(x).to(torch.float64)
            except ValueError:  # e.g. a permeability that overflows: zero posterior density there
                return torch.full((u.shape[0],), float("inf"), dtype=torch.float64)
        return torch.where(torch.isfinite(ll), -ll, torch.full_like(ll, float("inf")))

    def config(self) -> dict:
        """JSON description: name and the problem's configuration."""
        return {"name": self.name, **self.problem.config()}
