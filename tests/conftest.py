"""Shared test settings (one thread, no hub access) and shared problems.

:func:`linear_problem` is a plain function, importable as ``from tests.conftest import linear_problem``, so that
a test can build it at module level or in a parametrisation as well as inside a test.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from forward_models import Gaussian, InverseProblem, MatrixOperator  # noqa: E402
from priors import GaussianPrior  # noqa: E402

__all__ = ["CoarsenedMatrix", "linear_problem"]

torch.set_num_threads(1)


class CoarsenedMatrix(MatrixOperator):
    """``x -> A x`` with a biased cheaper level: :meth:`coarse` is ``x -> 1.1 A x`` (itself coarsened the same way),
    so multilevel samplers (delayed acceptance, MLDA) run on a linear problem."""

    def coarse(self) -> "CoarsenedMatrix":
        return CoarsenedMatrix(1.1 * self.A, dtype=self.A.dtype)


def linear_problem(seed: int = 0, *, coarse: bool = False) -> tuple[InverseProblem, GaussianPrior]:
    """A small linear-Gaussian problem and its analytic prior, in float64.

    ``y = A x + e`` with ``A`` a (2, 4) standard normal matrix drawn with ``seed``, ``e ~ N(0, 0.1^2 I)``, the
    truth ``x = (1, 1, 1, 1)``, and the prior ``N(0, I_4)``: the posterior is Gaussian in closed form
    (``prior.posterior(A, y, sigma_y=0.1)``). With ``coarse`` the operator is a :class:`CoarsenedMatrix` (same
    ``A``, same ``y``), which every sampler accepts (diffusion, SMC, ensemble, single- and multilevel MCMC).

    Example::

        problem, prior = linear_problem()
        post = DPS(10).sample(problem, prior, 16, seed=0)
    """
    g = torch.Generator().manual_seed(seed)
    op = (CoarsenedMatrix if coarse else MatrixOperator)(torch.randn(2, 4, generator=g, dtype=torch.float64),
                                                          dtype=torch.float64)
    problem = InverseProblem.simulate(op, Gaussian(0.1), torch.ones(4, dtype=torch.float64), seed=0)
    return problem, GaussianPrior(torch.zeros(4))
