"""The registered MCMC samplers: pCN, delayed acceptance and MLDA for an inverse problem and a prior.

The chain moves a parameter ``u`` under a Gaussian prior ``mu_0`` (Stuart 2010, Acta Numerica 19):

- a Gaussian prior (:class:`priors.GaussianPrior`, or any prior with a ``gaussian_measure()`` method returning a
  :class:`~priors.function_space.GaussianMeasure` of its flattened model-space samples, such as a Gaussian
  field): ``u`` is the model-space sample itself, ``mu_0`` the prior, ``x = prior.to_physical(u)``;
- any other prior (a diffusion or flow prior): ``u = z`` is the latent of its probability-flow map,
  ``mu_0 = N(0, I)``, ``x = T_K(z)`` with ``K = ode_steps`` (:mod:`samplers.mcmc.latent`).

The coarse levels of delayed acceptance and MLDA solve the same problem with ``forward_model.coarse()``
(applied once per level below the target); a forward model without one is refused. ``num_samples`` draws come
from ``C = gcd(num_chains, num_samples)`` chains started at draws of ``mu_0``, each keeping ``num_samples / C``
states spread evenly over its ``num_steps`` iterations after warm-up.
"""

from __future__ import annotations

import math

import torch

from forward_models.problem import InverseProblem
from priors import DenseGaussian, GaussianMeasure
from samplers.errors import SamplerConfigError
from samplers.mcmc.chains import MCMCSampler
from samplers.mcmc.delayed_acceptance import MLDA
from samplers.mcmc.latent import latent_measure, latent_potential
from samplers.mcmc.pcn import PCN
from samplers.mcmc.potential import Potential
from samplers.validation import fraction_in, int_at_least, positive_int

__all__ = ["PCNSampler", "DelayedAcceptanceSampler", "MLDASampler", "gaussian_measure", "coarse_problems",
           "problem_levels"]


def gaussian_measure(prior) -> GaussianMeasure | None:
    """The prior as ``N(m, C)`` on flattened model-space samples (float64, CPU), or None if it is not Gaussian."""
    hook = getattr(prior, "gaussian_measure", None)
    if callable(hook):
        return hook()
    from priors import GaussianPrior

    if isinstance(prior, GaussianPrior):
        return DenseGaussian(prior.mean.reshape(-1).double().cpu(), prior.covariance.double().cpu())
    return None


def _model_map(prior):
    """``u (B, d) -> prior.to_physical(u reshaped to the prior's shape)`` on the prior's device and dtype."""

    def to_physical(u: torch.Tensor) -> torch.Tensor:
        return prior.to_physical(u.reshape(u.shape[0], *prior.shape).to(device=prior.device, dtype=prior.dtype))

    return to_physical


def coarse_problems(problem: InverseProblem, prior, num_levels: int, who: str = "MCMC") -> list:
    """``num_levels`` problems, coarsest first: ``problem`` and ``forward_model.coarse()`` applied repeatedly."""
    problems = [problem]
    for _ in range(num_levels - 1):
        fm = problems[0].forward_model
        try:
            coarse = fm.coarse().to(device=problem.device, dtype=prior.dtype)
        except (NotImplementedError, ValueError) as e:
            raise SamplerConfigError(f"{who} needs {num_levels} levels, but {type(fm).__name__} gives no coarser one "
                                     f"({e}); use --sampler pcn") from None
        problems.insert(0, InverseProblem(coarse, problem.y, problem.noise))
    return problems


def problem_levels(problem: InverseProblem, prior, num_levels: int, *, ode_steps: int = 18, who: str = "MCMC"):
    """``(levels, measure)``: ``num_levels`` potentials, coarsest first (module docstring), and ``mu_0``."""
    problems = coarse_problems(problem, prior, num_levels, who)
    names = ["fine"] if num_levels == 1 else [f"coarse{num_levels - 1 - i}" for i in range(num_levels - 1)] + ["fine"]
    measure = gaussian_measure(prior)
    if measure is not None:
        levels = [Potential(p, _model_map(prior), name=n, dtype=prior.dtype)
                  for p, n in zip(problems, names, strict=True)]
        return levels, measure
    levels = [latent_potential(p, prior, ode_steps, name=n) for p, n in zip(problems, names, strict=True)]
    return levels, latent_measure(prior)


class _ProblemChains(MCMCSampler):
    """Chains from draws of ``mu_0``, one per requested sample; shared settings (module docstring)."""

    def __init__(self, num_steps: int, *, num_chains: int, beta: float, warmup: int, target_acceptance: float | None,
                 adapt_every: int, ode_steps: int):
        super().__init__(num_steps, warmup=warmup, target_acceptance=target_acceptance, adapt_every=adapt_every)
        who = type(self).__name__
        self.num_chains = positive_int(num_chains, f"{who}: num_chains")
        self.beta = fraction_in(beta, f"{who}: beta", closed="right")
        self.ode_steps = int_at_least(ode_steps, f"{who}: ode_steps", 2)

    def check(self, problem, prior) -> None:
        if tuple(prior.shape) != tuple(problem.forward_model.input_shape):
            raise SamplerConfigError(f"the prior's samples have shape {tuple(prior.shape)} but the forward model "
                                     f"expects {tuple(problem.forward_model.input_shape)}")
        if self.num_levels() > 1:
            coarse_problems(problem, prior, self.num_levels(), type(self).__name__)

    def kernel(self, levels, measure):  # pragma: no cover
        raise NotImplementedError

    def num_levels(self) -> int:
        return 1

    def chains(self, problem, prior, num_samples, generator):
        levels, measure = problem_levels(problem, prior, self.num_levels(), ode_steps=self.ode_steps,
                                         who=type(self).__name__)
        return self.kernel(levels, measure), measure.sample(math.gcd(self.num_chains, num_samples), generator)


class PCNSampler(_ProblemChains):
    """pCN chains (:class:`~samplers.mcmc.pcn.PCN`) on the problem's forward model.

    Accepts a Gaussian prior (chains in model space) or a diffusion / flow prior (chains in its latent,
    ``ode_steps`` probability-flow steps per evaluation). Up to ``num_chains`` chains, each
    ``warmup + num_steps`` iterations (module docstring); ``beta`` the initial step size, adapted towards
    ``target_acceptance`` during warm-up.

    Example::

        import torch
        from forward_models import Gaussian, InverseProblem, MatrixOperator
        from priors import GaussianPrior
        from samplers.mcmc import PCNSampler
        problem = InverseProblem.simulate(MatrixOperator(torch.eye(2, dtype=torch.float64)), Gaussian(0.5),
                                          torch.ones(2, dtype=torch.float64), seed=0)
        post = PCNSampler(200, warmup=50).sample(problem, GaussianPrior(torch.zeros(2)), 4, seed=0)
        post.mean(), post.diagnostics["acceptance"], post.diagnostics["ess_min"]
    """

    def __init__(self, num_steps: int = 1000, *, num_chains: int = 4, beta: float = 0.2, warmup: int = 200,
                 target_acceptance: float = 0.25, adapt_every: int = 25, ode_steps: int = 18):
        super().__init__(num_steps, num_chains=num_chains, beta=beta, warmup=warmup,
                         target_acceptance=target_acceptance, adapt_every=adapt_every, ode_steps=ode_steps)

    def kernel(self, levels, measure):
        return PCN(levels[0], measure, self.beta)


class MLDASampler(_ProblemChains):
    """Multilevel delayed acceptance (:class:`~samplers.mcmc.delayed_acceptance.MLDA`) over ``num_levels`` grids.

    Accepts a Gaussian or a diffusion / flow prior (as :class:`PCNSampler`) and a forward model whose
    ``coarse()`` can be applied ``num_levels - 1`` times; refuses others. Sub-chains of
    ``subchain_length`` steps (uniform on ``1..subchain_length`` with ``randomize``) on each coarser level.

    Example::

        # inverse reconstruct y.nc --sampler mlda --prior gaussian -s num_levels=3 --steps 200
    """

    def __init__(self, num_steps: int = 200, *, num_levels: int = 3, subchain_length: int = 5, randomize: bool = True,
                 num_chains: int = 4, beta: float = 0.2, warmup: int = 50, target_acceptance: float = 0.25,
                 adapt_every: int = 25, ode_steps: int = 18):
        super().__init__(num_steps, num_chains=num_chains, beta=beta, warmup=warmup,
                         target_acceptance=target_acceptance, adapt_every=adapt_every, ode_steps=ode_steps)
        self.depth = int_at_least(num_levels, f"{type(self).__name__}: num_levels", 2)
        self.subchain_length = positive_int(subchain_length, f"{type(self).__name__}: subchain_length")
        self.randomize = bool(randomize)

    def num_levels(self) -> int:
        return self.depth

    def kernel(self, levels, measure):
        return MLDA(levels, measure, self.subchain_length, self.beta, randomize=self.randomize)


class DelayedAcceptanceSampler(MLDASampler):
    """Two-level delayed acceptance (Christen & Fox 2005): :class:`MLDASampler` with the model and its ``coarse()``.

    Accepts a Gaussian or a diffusion / flow prior and a forward model with a ``coarse()`` level (e.g. Darcy
    flow on a grid twice as coarse); refuses others with a one-line error.

    Example::

        # inverse reconstruct y.nc --sampler da --prior gaussian --steps 200
    """

    def __init__(self, num_steps: int = 200, *, subchain_length: int = 5, randomize: bool = True,
                 num_chains: int = 4, beta: float = 0.2, warmup: int = 50, target_acceptance: float = 0.25,
                 adapt_every: int = 25, ode_steps: int = 18):
        super().__init__(num_steps, num_levels=2, subchain_length=subchain_length, randomize=randomize,
                         num_chains=num_chains, beta=beta, warmup=warmup, target_acceptance=target_acceptance,
                         adapt_every=adapt_every, ode_steps=ode_steps)
