"""MCMC kernels under the one driver: warm-up adaptation, thinning, kept draws and diagnostics.

:class:`MCMCSampler` turns a kernel (:mod:`samplers.mcmc.kernel`) into a :class:`~samplers.base.Sampler`, so
that :func:`samplers.base.run` drives it like every other sampler (progress, callback, cost counters,
checkpoint / resume through :mod:`samplers.checkpoint`, bit-identical on resume). ``C`` chains advance
together as one batch for ``warmup + num_steps`` iterations. During warm-up, with ``target_acceptance``
set, every ``adapt_every`` iterations

    log beta += (a - target) / sqrt(k)

with ``a`` the acceptance of the coarsest level's pCN proposals over the window and ``k`` the window
index; ``beta`` is clipped to ``[1e-4, 1]`` and frozen after warm-up, so the kept draws come from a fixed
reversible kernel. After warm-up every ``thin``-th state is kept, ``thin`` chosen so that the chains keep
``num_samples`` draws in all (:meth:`MCMCSampler.thinning`). The :class:`~samplers.posterior.Posterior`
holds the kept draws (chain-major) and, in its diagnostics, acceptance per level, evaluations per level and
bulk ESS / rank-normalised split R-hat (ArviZ; Vehtari et al. 2021). :class:`Chains` runs a kernel built by
hand (levels of :class:`~samplers.mcmc.potential.Potential`) from given starting points;
:func:`sample_chains` is its one-call form and :class:`~samplers.mcmc.result.ChainResult` a view of the result.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch

from priors.base import Prior
from samplers.base import Counters, Sampler, run
from samplers.errors import SamplerConfigError
from samplers.mcmc.kernel import MCMCKernel, MCMCState
from samplers.mcmc.result import ChainResult, chain_diagnostics
from samplers.posterior import Posterior
from samplers.validation import fraction_in, non_negative_int, positive_int

__all__ = ["MCMCSampler", "Chains", "MeasurePrior", "sample_chains"]


class MCMCSampler(Sampler):
    """Base of the MCMC samplers: subclasses implement :meth:`chains` (the kernel and the starting points).

    Parameters
    ----------
    num_steps : iterations per chain after warm-up (the kept draws are spread evenly over them)
    warmup : iterations before, with the step size adapted when ``target_acceptance`` is set
    target_acceptance : level-0 acceptance the warm-up steers ``beta`` towards (None: no adaptation)
    adapt_every : iterations per adaptation window
    """

    static_fields = ("kernel",)

    def __init__(self, num_steps: int = 1000, *, warmup: int = 0, target_acceptance: float | None = None,
                 adapt_every: int = 25):
        self.iterations, self.warmup = positive_int(num_steps, "num_steps"), non_negative_int(warmup, "warmup")
        self.target_acceptance = None if target_acceptance is None else \
            fraction_in(target_acceptance, "target_acceptance", closed="neither")
        self.adapt_every = positive_int(adapt_every, "adapt_every")

    def num_steps(self) -> int:
        return self.warmup + self.iterations

    def chains(self, problem, prior, num_samples: int, generator: torch.Generator) -> tuple[MCMCKernel, torch.Tensor]:
        """``(kernel, u0)``: the kernel for this problem and prior and ``(C, d)`` starting points."""
        raise NotImplementedError  # pragma: no cover

    def thinning(self, num_chains: int, num_samples: int) -> int:
        """Iterations between kept states so that ``num_chains`` chains keep ``num_samples`` draws in all."""
        per_chain = num_samples // num_chains
        if num_samples % num_chains or per_chain > self.iterations:
            raise SamplerConfigError(f"{type(self).__name__}: {num_samples} samples cannot be {num_chains} chains of "
                                     "at most "
                                     f"num_steps={self.iterations} draws each")
        return self.iterations // per_chain

    def physical(self, kernel: MCMCKernel, u: torch.Tensor) -> torch.Tensor:
        """Kept draws ``u (n, d)`` in physical units (the target level's parameter map)."""
        return kernel.levels[-1].transform(u)

    def init(self, problem, prior, num_samples, generator) -> MCMCState:
        if generator.device.type != "cpu":
            raise SamplerConfigError(f"{type(self).__name__}: the chains run on the CPU; run without --device")
        kernel, u0 = self.chains(problem, prior, num_samples, generator)
        fields = kernel.init(u0)
        C, d = fields["x"].shape
        thin = self.thinning(C, int(num_samples))
        T = num_samples // C
        nan = float("nan")
        counters = Counters().add(**_cost(kernel, fields["evaluations"]))
        return MCMCState(step=0, problem=problem, prior=prior, generator=generator, counters=counters, thin=thin,
                         draws=torch.full((C, T, d), nan, dtype=torch.float64),
                         potentials=torch.full((C, T), nan, dtype=torch.float64), kernel=kernel, **fields)

    def step(self, state: MCMCState) -> MCMCState:
        """One kernel transition, then the warm-up adaptation and the thinning (module docstring)."""
        new = state.kernel.step(state)
        it, changes = state.step + 1, {}
        if self.target_acceptance is not None and it <= self.warmup and it % self.adapt_every == 0:
            p, a = new.proposals[0] - state.window[0], new.accepts[0] - state.window[1]
            if p:
                step = (a / p - self.target_acceptance) / math.sqrt(it // self.adapt_every)
                changes["beta"] = float(min(1.0, max(1e-4, new.beta * math.exp(step))))
            changes["window"] = (new.proposals[0], new.accepts[0])
        k = (it - self.warmup) // state.thin - 1
        if it > self.warmup and (it - self.warmup) % state.thin == 0 and k < new.draws.shape[1]:
            new.draws[:, k] = new.x  # preallocated: the kept draws are written in place, in order
            new.potentials[:, k] = new.phi[:, -1]
        spent = [a - b for a, b in zip(new.evaluations, state.evaluations, strict=True)]
        return self.advance(new, x=new.x, **_cost(new.kernel, spent), **changes)

    def finalize(self, state: MCMCState) -> Posterior:
        C, T, d = state.draws.shape
        with torch.no_grad():
            samples = self.physical(state.kernel, state.draws.reshape(C * T, d))
        names = state.kernel.level_names()
        diag = {"chains": C, "draws": T, "level_names": names, "evaluations": list(state.evaluations),
                "proposals": list(state.proposals), "accepts": list(state.accepts), "beta": state.beta,
                "acceptance": {n: (a / p if p else float("nan"))
                               for n, a, p in zip(names, state.accepts, state.proposals, strict=True)},
                **chain_diagnostics(state.draws)}
        truth = state.problem.truth
        truth = truth if truth is not None and tuple(truth.shape) == tuple(samples.shape[1:]) else None
        return Posterior(samples.detach(), diagnostics=diag, truth=truth,
                         dims=getattr(state.prior, "dims", None) if samples.ndim > 2 else None,
                         extras={"chain_potentials": state.potentials.clone()})

    def config(self) -> dict:
        return {**super().config(), "num_steps": self.iterations}


def _cost(kernel: MCMCKernel, evaluations) -> dict:
    """Forward solves and network evaluations of ``evaluations[l]`` potential evaluations per level."""
    nfe = sum(int(n) * int(getattr(getattr(lvl, "transform", None), "nfe_per_sample", 0))
              for n, lvl in zip(evaluations, kernel.levels, strict=True))
    return {"forward_evals": int(sum(evaluations)), "nfe": nfe}


class MeasurePrior(Prior):
    """A :class:`~priors.function_space.GaussianMeasure` ``N(m_0, C_0)`` on ``R^d`` as a :class:`Prior` of the
    chain's own coordinates (identity physical map; the exact Gaussian denoiser
    ``D(x, sigma) = m_0 + C_0 (C_0 + sigma^2 I)^{-1} (x - m_0)``): what :class:`Chains` hands to the driver."""

    def __init__(self, measure):
        super().__init__()
        self.measure = measure
        self.shape, self.sigma_min, self.sigma_max = (int(measure.dim),), 1e-3, 80.0
        self.register_buffer("mean", measure.mean.to(torch.float64).clone())

    def denoise(self, x, sigma):
        C = self.measure.covariance()
        eye = torch.eye(len(C), dtype=C.dtype)
        r = (x - self.mean).to(C.dtype)
        out = torch.stack([C @ torch.linalg.solve(C + float(s) ** 2 * eye, ri) for s, ri in zip(sigma, r, strict=True)])
        return (self.mean + out).to(x.dtype)

    def config(self) -> dict:
        return {**super().config(), "measure": self.measure.config()}


class Chains(MCMCSampler):
    """Chains of a kernel built by hand, started at ``u0 (C, d)``; the draws stay in the chain's coordinates.

    Run it with :func:`sample_chains`, which supplies the driver's problem (the target level's) and prior
    (:class:`MeasurePrior` of the kernel's measure). Every ``thin``-th state after warm-up is kept, so
    ``num_samples`` must be ``len(u0) * (num_steps // thin)``; other settings as :class:`MCMCSampler`.
    """

    def __init__(self, kernel: MCMCKernel, u0: torch.Tensor, num_steps: int = 1000, *, thin: int = 1, **settings):
        super().__init__(num_steps, **settings)
        if positive_int(thin, "thin") > self.iterations:
            raise SamplerConfigError(f"thin must lie in [1, num_steps], got {thin}")
        self.kernel, self.u0, self.thin = kernel, torch.as_tensor(u0, dtype=torch.float64), int(thin)

    def thinning(self, num_chains, num_samples):
        if num_samples != num_chains * (self.iterations // self.thin):
            raise SamplerConfigError(f"Chains keeps {num_chains} x {self.iterations // self.thin} draws, not "
                                     f"{num_samples}")
        return self.thin

    def chains(self, problem, prior, num_samples, generator):
        return self.kernel, self.u0

    def check(self, problem, prior) -> None:
        pass  # the kernel's levels carry their own parameter maps

    def physical(self, kernel, u):
        return u

    def config(self) -> dict:
        u0 = self.u0.contiguous()
        return {**super().config(), "kernel": self.kernel.config(),
                "u0_sha1": hashlib.sha1(u0.numpy().tobytes() + str(tuple(u0.shape)).encode()).hexdigest()[:16]}


def sample_chains(kernel: MCMCKernel, u0: torch.Tensor, num_iterations: int, *, seed: int = 0, warmup: int = 0,
                  thin: int = 1, target_acceptance: float | None = None, adapt_every: int = 25, checkpoint=None,
                  checkpoint_every: int = 100, resume: bool | None = None, callback=None,
                  progress: bool = False) -> ChainResult:
    """Run ``C = len(u0)`` chains of ``kernel`` under :func:`samplers.base.run` (module docstring).

    ``checkpoint`` a path: the state is saved there every ``checkpoint_every`` iterations, at the end and on
    interruption; ``resume`` (default: whether the file exists) continues from it, bit-identical to an
    uninterrupted run. The target level must be a :class:`~samplers.mcmc.potential.Potential`.
    """
    num_iterations = positive_int(num_iterations, "num_iterations")  # thin, warm-up, ...: Chains and run check them
    target = kernel.levels[-1]
    if not hasattr(target, "problem"):
        raise TypeError("sample_chains: the target level must be a Potential (it names the inverse problem)")
    sampler = Chains(kernel, u0, num_iterations, warmup=warmup, thin=thin, target_acceptance=target_acceptance,
                     adapt_every=adapt_every)
    if resume is None:
        resume = checkpoint is not None and Path(checkpoint).is_file()
    num_samples = len(sampler.u0) * (sampler.iterations // sampler.thin)
    post = run(sampler, target.problem, MeasurePrior(kernel.measure), num_samples, seed=seed,
               checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, callback=callback,
               progress=progress)
    return ChainResult(post)

