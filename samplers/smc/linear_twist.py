"""Fully adapted SMC for linear-Gaussian problems: the ancestral kernel tilted by Gaussian twists.

A twist at level ``k`` is a Gaussian potential in the operator's singular basis (:class:`LinearGaussian`,
``z = Vh x``): ``g_k(x) = prod_{i active} N(y_bar_i; s_i z_i, var_i)``; ``var_i = 0`` pins ``z_i = y_bar_i / s_i``
(a coordinate observed exactly at that level, absorbed into the normaliser and then dropped). From level
``k`` (sigma ``s``) to ``k + 1`` (``s'``), with the reverse kernel ``N(m(x), v I)``,
``m = D + (s'^2/s^2)(x - D)`` and ``v`` the kernel variance::

    pre-move weight   log int N(x'; m, v I) g_{k+1}(x') dx' - log g_k(x)    (depends on x only)
    move              x' ~ N(x'; m, v I) g_{k+1}(x') / normaliser             (exact, closed form)

which is the locally optimal proposal for these targets (Doucet, Godsill and Andrieu 2000), so the
particles can be resampled before they move. The initial draw samples ``N(0, s_0^2 I) g_0`` exactly.

A method is a :class:`TwistPath`, a typed record of its per-problem constants that answers four
questions about the path of targets: the twist at a level (:meth:`TwistPath.twist`), the part of the
current twist still to divide out (:meth:`TwistPath.pending`), the potential the move to a level is
tilted by (:meth:`TwistPath.potential`), and that potential's datum (:meth:`TwistPath.datum`; ``y_bar``
unless it depends on the particles). :class:`LinearTwistSMC` composes the SMC step from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forward_models.noise import Gaussian
from samplers.errors import SamplerConfigError
from samplers.smc.base import Move, SMCSampler
from samplers.smc.linear_gaussian import LinearGaussian
from samplers.steps import sigma_batch

__all__ = ["TwistPath", "LinearTwistSMC"]


@dataclass(frozen=True)
class TwistPath:
    """A path of Gaussian twists in the singular basis ``lg`` over the grid ``sigmas`` (module docstring).

    A subclass implements :meth:`twist`; the defaults of the other three follow from it.
    """

    lg: LinearGaussian
    sigmas: list

    def twist(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """``(var (r,), active (r,))`` of the twist ``g_k``."""
        raise NotImplementedError

    def pending(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of ``g_k`` still to be divided out at the next step: all of it except pinned
        coordinates (``var = 0``), which were absorbed into the normaliser when pinned."""
        var, active = self.twist(k)
        active = active & (var > 0)
        return torch.where(active, var, torch.ones_like(var)), active

    def potential(self, k: int) -> tuple:
        """``(gain, var, active)`` of the potential the move to level ``k`` is tilted by: the twist ``g_k``
        with the singular values as gains (``gain = None``)."""
        return (None, *self.twist(k))

    def datum(self, k: int, z: torch.Tensor):
        """The potential's datum per particle ``(B, r)`` given the current ``z = Vh x``, or ``None`` for ``y_bar``."""
        return None


class LinearTwistSMC(SMCSampler):
    """Fully adapted SMC along a :class:`TwistPath` (module docstring): exact tilted moves, one NFE per particle
    and step, no network gradients. A subclass builds its path in :meth:`setup`."""

    needs_linear = True

    def check(self, problem, prior) -> None:
        """Linear forward model and Gaussian noise, with one-line reasons."""
        fm = problem.forward_model
        if not fm.linear:
            raise SamplerConfigError(f"{type(self).__name__} needs a linear forward model (it works in the operator's "
                                     f"singular basis), but {type(fm).__name__} is not linear; use TDS or DPS")
        if not isinstance(problem.noise, Gaussian):
            raise SamplerConfigError(f"{type(self).__name__} needs Gaussian noise, got {type(problem.noise).__name__}")
        super().check(problem, prior)

    def basis(self, problem, prior) -> LinearGaussian:
        """The operator's singular basis (:meth:`LinearGaussian.from_problem`)."""
        return LinearGaussian.from_problem(problem, prior, type(self).__name__)

    def setup(self, problem, prior, sigmas) -> TwistPath:  # pragma: no cover
        """The path of twists of this method."""
        raise NotImplementedError

    def initial(self, problem, prior, n, generator, model: TwistPath, sigmas) -> Move:
        """Exact draw from ``N(0, s_0^2 I) g_0`` (its normaliser is the initial weight)."""
        var, active = model.twist(0)
        mean = torch.zeros(n, *prior.shape, dtype=prior.dtype, device=prior.device)
        x, log_norm = model.lg.tilted_sample(mean, sigmas[0] ** 2, var, active, generator)
        return Move(x, log_norm, forward_evals=n)

    def weight(self, state, s, s_next):
        """Normaliser of the tilted kernel over the current twist; hands the kernel mean (and ``Vh`` of it)
        to :meth:`move`."""
        path, k, x = state.model, state.step, state.x
        with torch.no_grad():
            x0 = state.prior.denoise(x, sigma_batch(s, x))
            ratio = (s_next / s) ** 2
            mean = x0 + ratio * (x - x0)
            v = self.kernel_variance(x, x0, s, s_next, state.log_weights)
            lg = path.lg
            # one pass over Vh for both (a projection of a few particles is memory-bound)
            z, z_mean = lg.project(torch.cat([x, mean])).split(len(x))
            gain, var, active = path.potential(k + 1)
            y = path.datum(k + 1, z)
            g = lg.s if gain is None else gain
            log_norm = lg.log_twist(z_mean, g**2 * v + var, active, y=y, gain=gain)
            pending_var, pending = path.pending(k)
            pre = log_norm - lg.log_twist(z, pending_var, pending)
        return pre, {"mean": mean, "z_mean": z_mean, "y": y,
                     "v": torch.full((len(x),), v, dtype=torch.float64, device=x.device)}

    def move(self, state, x, cache, aux, s, s_next) -> Move:
        """Exact draw from the tilted kernel (``aux`` follows the resampled ancestors)."""
        path = state.model
        v = float(aux["v"][0])  # the variance the weight integrated the potential against
        gain, var, active = path.potential(state.step + 1)
        x_new, _ = path.lg.tilted_sample(aux["mean"], v, var, active, state.generator, y=aux["y"], gain=gain,
                                         z_mean=aux.get("z_mean"))
        n = len(x)
        return Move(x_new, None, nfe=n, forward_evals=2 * n)
