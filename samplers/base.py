"""The sampler contract: configuration, state, step; one driver for all samplers.

A sampler is a small class whose ``__init__`` holds configuration only; running never mutates it.
The loop is explicit and the same for every algorithm::

    state = sampler.init(problem, prior, num_samples, generator)
    while not sampler.done(state):
        state = sampler.step(state)
    posterior = sampler.finalize(state)

:func:`run` drives that loop with a tqdm progress bar and a callback; :meth:`Sampler.sample` is the
one-call API. Each sampler counts its own cost in :class:`Counters`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from forward_models.problem import InverseProblem
from priors.base import Prior
from samplers.errors import SamplerError
from samplers.posterior import Posterior

__all__ = ["Counters", "SamplerState", "Sampler", "run", "make_generator", "SamplerError"]


@dataclass(frozen=True)
class Counters:
    """Cost counters, each counted once per sample (particle) per evaluation.

    ``nfe``: denoiser (network) evaluations; ``forward_evals``: forward-model evaluations;
    ``grad_evals``: vector-Jacobian products (through the network and/or the forward model).
    """

    nfe: int = 0
    forward_evals: int = 0
    grad_evals: int = 0

    def add(self, nfe: int = 0, forward_evals: int = 0, grad_evals: int = 0) -> "Counters":
        """A new record with the given increments."""
        return Counters(self.nfe + nfe, self.forward_evals + forward_evals, self.grad_evals + grad_evals)

    def as_dict(self) -> dict:
        """Plain dict for diagnostics."""
        return dataclasses.asdict(self)


@dataclass
class SamplerState:
    """State carried from step to step: particles in model space and bookkeeping.

    ``problem`` and ``prior`` are references (never copied); ``extras`` holds sampler-specific
    tensors (e.g. the noise schedule) so that ``step`` needs nothing but the state.
    """

    x: torch.Tensor
    step: int
    problem: InverseProblem
    prior: Prior
    generator: torch.Generator
    counters: Counters = field(default_factory=Counters)
    log_weights: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)


def make_generator(seed: int, device) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


class Sampler:
    """Base class of posterior samplers. Subclasses implement :meth:`init`, :meth:`step`, :meth:`num_steps`.

    Class flags: ``needs_gradient`` (refuses forward models with ``differentiable=False``),
    ``needs_linear`` (refuses non-linear forward models).

    Example: a new sampler in ten lines (prior samples by the probability-flow ODE, ignoring y)::

        import torch
        from samplers import Sampler, SamplerState
        from samplers.schedules import karras_sigmas

        class PriorODE(Sampler):
            def __init__(self, num_steps=20):
                self.steps = num_steps
            def num_steps(self):
                return self.steps
            def init(self, problem, prior, num_samples, generator):
                sig = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, device=prior.device)
                x = sig[0] * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype, device=prior.device)
                return SamplerState(x, 0, problem, prior, generator, extras={"sigmas": sig})
            def step(self, state):
                s, s_next = state.extras["sigmas"][state.step], state.extras["sigmas"][state.step + 1]
                d = (state.x - state.prior.denoise(state.x, s.expand(len(state.x)))) / s
                return self.advance(state, x=state.x + (s_next - s) * d, nfe=len(state.x))
    """

    needs_gradient: bool = False
    needs_linear: bool = False

    def num_steps(self) -> int:  # pragma: no cover
        """Number of calls to :meth:`step` in a full run."""
        raise NotImplementedError

    def init(self, problem: InverseProblem, prior: Prior, num_samples: int, generator: torch.Generator) -> SamplerState:  # pragma: no cover
        """Initial state."""
        raise NotImplementedError

    def step(self, state: SamplerState) -> SamplerState:  # pragma: no cover
        """One update; returns a new state."""
        raise NotImplementedError

    def done(self, state: SamplerState) -> bool:
        """Whether the run is complete."""
        return state.step >= self.num_steps()

    def advance(self, state: SamplerState, *, x: torch.Tensor, nfe: int = 0, forward_evals: int = 0,
                grad_evals: int = 0, **changes) -> SamplerState:
        """New state with particles ``x``, the step index advanced and the counters incremented.

        Non-finite particles raise :class:`SamplerError` naming the step.
        """
        if not bool(torch.isfinite(x).all()):
            raise SamplerError(f"{type(self).__name__}: non-finite particles at step {state.step + 1}/{self.num_steps()} "
                               "(reduce the step size or guidance scale)")
        return dataclasses.replace(state, x=x.detach(), step=state.step + 1,
                                   counters=state.counters.add(nfe, forward_evals, grad_evals), **changes)

    def finalize(self, state: SamplerState) -> Posterior:
        """Posterior from the final state: particles mapped to physical units."""
        with torch.no_grad():
            samples = state.prior.to_physical(state.x)
        return Posterior(samples.detach(), state.log_weights, truth=state.problem.truth,
                         dims=getattr(state.prior, "dims", None))

    def config(self) -> dict:
        """JSON description: class name and the constructor's configuration."""
        cfg = {k: v for k, v in vars(self).items() if isinstance(v, (int, float, str, bool, type(None)))}
        return {"class": type(self).__name__, **cfg}

    def check(self, problem: InverseProblem, prior: Prior) -> None:
        """Refuse problem/prior combinations this sampler cannot handle, with a one-line reason."""
        fm = problem.forward_model
        if tuple(prior.shape) != tuple(fm.input_shape):
            raise ValueError(f"the prior's samples have shape {tuple(prior.shape)} but the forward model "
                             f"expects {tuple(fm.input_shape)}")
        if self.needs_gradient and not fm.differentiable:
            raise ValueError(f"{type(self).__name__} needs gradients, but {type(fm).__name__} is not differentiable; "
                             "use a derivative-free sampler (EnKG)")
        if self.needs_linear and not fm.linear:
            raise ValueError(f"{type(self).__name__} needs a linear forward model, but {type(fm).__name__} is not linear")

    def sample(self, problem: InverseProblem, prior: Prior, num_samples: int, *, seed: int = 0,
               device=None, progress: bool = False,
               callback: Callable[[SamplerState], None] | None = None) -> Posterior:
        """Draw ``num_samples`` posterior samples (one-call API); see :func:`run`."""
        return run(self, problem, prior, num_samples, seed=seed, device=device, progress=progress, callback=callback)


def run(sampler: Sampler, problem: InverseProblem, prior: Prior, num_samples: int, *, seed: int = 0,
        generator: torch.Generator | None = None, device=None, progress: bool = False,
        callback: Callable[[SamplerState], None] | None = None) -> Posterior:
    """The one driver of every sampler: validate, init, step with a progress bar, finalize.

    With ``device`` given, the prior is moved there (``nn.Module.to``, in place); the problem is
    moved to the prior's device. ``callback(state)`` runs after every step. The
    posterior's ``diagnostics`` hold the cost counters and the wall time; its ``config`` the
    sampler, prior and forward-model configuration and the seed.
    """
    if not isinstance(sampler, Sampler):
        raise TypeError(f"expected a Sampler, got {type(sampler).__name__}")
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"expected an InverseProblem, got {type(problem).__name__}")
    if not isinstance(prior, Prior):
        raise TypeError(f"expected a Prior, got {type(prior).__name__}")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    sampler.check(problem, prior)
    if device is not None:
        prior.to(torch.device(device))
    device = prior.device
    if problem.device != device:
        problem = problem.to(device)
    if generator is None:
        generator = make_generator(seed, device)
    t0 = time.perf_counter()
    state = sampler.init(problem, prior, int(num_samples), generator)
    with tqdm(total=sampler.num_steps(), disable=not progress, desc=type(sampler).__name__, leave=False) as bar:
        while not sampler.done(state):
            state = sampler.step(state)
            bar.update(1)
            if callback is not None:
                callback(state)
    post = sampler.finalize(state)
    post.diagnostics = {**post.diagnostics, **state.counters.as_dict(), "num_samples": int(num_samples),
                        "wall_time_s": time.perf_counter() - t0, "device": str(device)}
    post.config = {"sampler": sampler.config(), "prior": prior.config(), **problem.config(), "seed": int(seed)}
    return post
