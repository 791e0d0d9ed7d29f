"""The sampler contract: configuration, state, step; one driver for all samplers.

A sampler is a small class whose ``__init__`` holds configuration only; running never mutates it.
The loop is explicit and the same for every algorithm::

    state = sampler.init(problem, prior, num_samples, generator)
    while not sampler.done(state):
        state = sampler.step(state)
    posterior = sampler.finalize(state)

:func:`run` drives that loop with a tqdm progress bar and a callback; :meth:`Sampler.sample` is the
one-call API. Each sampler counts its own cost in :class:`Counters`. The state is a typed dataclass:
:class:`State` holds what every sampler carries, and each sampler subclasses it with its own fields
(``DPSState(State)`` adds the noise schedule), updated with ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from forward_models.problem import InverseProblem
from priors.base import Prior
from samplers.errors import SamplerConfigError, SamplerError
from samplers.posterior import Posterior, package_versions
from samplers.validation import positive_int

__all__ = ["Counters", "State", "Sampler", "run", "make_generator", "SamplerError", "package_versions",
           "resolve_device"]


@dataclass(frozen=True)
class Counters:
    """Cost counters, each counted once per sample (particle) per evaluation.

    ``nfe``: denoiser (network) evaluations; ``forward_evals``: forward-model evaluations;
    ``grad_evals``: vector-Jacobian products (through the network and/or the forward model).
    """

    nfe: int = 0
    forward_evals: int = 0
    grad_evals: int = 0

    def add(self, nfe: int = 0, forward_evals: int = 0, grad_evals: int = 0) -> Counters:
        """A new record with the given increments."""
        return Counters(self.nfe + nfe, self.forward_evals + forward_evals, self.grad_evals + grad_evals)

    def as_dict(self) -> dict:
        """Plain dict for diagnostics."""
        return dataclasses.asdict(self)


@dataclass
class State:
    """State carried from step to step: particles in model space and bookkeeping.

    ``problem`` and ``prior`` are references (never copied) and ``generator`` is the run's random
    stream. A sampler subclasses this with typed fields of its own (keyword-only, so they may follow
    the defaults here), e.g. ``@dataclass(kw_only=True) class DPSState(State): sigmas: list``, so
    that ``step`` needs nothing but the state; ``dataclasses.replace`` makes the next one.
    """

    x: torch.Tensor
    step: int
    problem: InverseProblem
    prior: Prior
    generator: torch.Generator
    counters: Counters = field(default_factory=Counters)
    log_weights: torch.Tensor | None = None


def resolve_device(device) -> torch.device:
    """``torch.device(device)``, or a one-line ValueError for unknown names and unavailable CUDA devices."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SamplerConfigError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index is not None and dev.index >= torch.cuda.device_count())):
        raise SamplerConfigError(f"device {device!r} is not available on this machine")
    return dev


def make_generator(seed: int, device) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


class Sampler:
    """Base class of posterior samplers. Subclasses implement :meth:`init`, :meth:`step`, :meth:`num_steps`.

    Class flags: ``needs_gradient`` (refuses forward models with ``differentiable=False``),
    ``needs_linear`` (refuses non-linear forward models).

    Example: a new sampler in a dozen lines (prior samples by the probability-flow ODE, ignoring y)::

        import dataclasses, torch
        from samplers import Sampler, State
        from samplers.schedules import karras_sigmas

        @dataclasses.dataclass(kw_only=True)
        class ODEState(State):
            sigmas: torch.Tensor

        class PriorODE(Sampler):
            static_fields = ("sigmas",)
            def __init__(self, num_steps=20):
                self.steps = num_steps
            def num_steps(self):
                return self.steps
            def init(self, problem, prior, num_samples, generator):
                sig = karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, device=prior.device)
                x = sig[0] * torch.randn(num_samples, *prior.shape, generator=generator, dtype=prior.dtype)
                return ODEState(x, 0, problem, prior, generator, sigmas=sig)
            def step(self, state):
                s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
                d = (state.x - state.prior.denoise(state.x, s.expand(len(state.x)))) / s
                return self.advance(state, x=state.x + (s_next - s) * d, nfe=len(state.x))
    """

    needs_gradient: bool = False
    needs_linear: bool = False
    #: names of state fields that ``init`` rebuilds deterministically (a noise schedule, an SVD): not
    #: written to checkpoints, taken from a fresh ``init`` on resume (:mod:`samplers.checkpoint`)
    static_fields: tuple = ()

    def num_steps(self) -> int:  # pragma: no cover
        """Number of calls to :meth:`step` in a full run."""
        raise NotImplementedError

    def init(self, problem: InverseProblem, prior: Prior, num_samples: int,
             generator: torch.Generator) -> State:  # pragma: no cover
        """Initial state."""
        raise NotImplementedError

    def step(self, state: State) -> State:  # pragma: no cover
        """One update; returns a new state."""
        raise NotImplementedError

    def done(self, state: State) -> bool:
        """Whether the run is complete."""
        return state.step >= self.num_steps()

    def advance(self, state: State, *, x: torch.Tensor, nfe: int = 0, forward_evals: int = 0,
                grad_evals: int = 0, **changes) -> State:
        """New state with particles ``x``, the step index advanced and the counters incremented.

        Non-finite particles raise :class:`SamplerError` naming the step.
        """
        if not bool(torch.isfinite(x).all()):
            raise SamplerError(f"{type(self).__name__}: non-finite particles at step "
                               f"{state.step + 1}/{self.num_steps()} "
                               "(reduce the step size or guidance scale)")
        return dataclasses.replace(state, x=x.detach(), step=state.step + 1,
                                   counters=state.counters.add(nfe, forward_evals, grad_evals), **changes)

    def finalize(self, state: State) -> Posterior:
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
            raise SamplerConfigError(f"the prior's samples have shape {tuple(prior.shape)} but the forward model "
                                     f"expects {tuple(fm.input_shape)}")
        if self.needs_gradient and not fm.differentiable:
            raise SamplerConfigError(f"{type(self).__name__} needs gradients, but {type(fm).__name__} is not "
                                     "differentiable; "
                                     "use a derivative-free sampler (EnKG)")
        if self.needs_linear and not fm.linear:
            raise SamplerConfigError(f"{type(self).__name__} needs a linear forward model, but {type(fm).__name__} "
                                     "is not linear")

    def sample(self, problem: InverseProblem, prior: Prior, num_samples: int, *, seed: int = 0,
               device=None, progress: bool = False,
               callback: Callable[[State], None] | None = None, checkpoint=None,
               checkpoint_every: int = 10, resume: bool = False) -> Posterior:
        """Draw ``num_samples`` posterior samples (one-call API); see :func:`run` (also for checkpoints)."""
        return run(self, problem, prior, num_samples, seed=seed, device=device, progress=progress, callback=callback,
                   checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)


def run(sampler: Sampler, problem: InverseProblem, prior: Prior, num_samples: int, *, seed: int = 0,
        generator: torch.Generator | None = None, device=None, progress: bool = False,
        callback: Callable[[State], None] | None = None, checkpoint=None, checkpoint_every: int = 10,
        resume: bool = False) -> Posterior:
    """The one driver of every sampler: validate, init, step with a progress bar, finalize.

    With ``device`` given, the prior is moved there (``nn.Module.to``, in place); the problem is
    moved to the prior's device. ``callback(state)`` runs after every step. The
    posterior's ``diagnostics`` hold the cost counters and the wall time; its ``config`` the
    sampler, prior and forward-model configuration and the seed.

    Checkpoints (:mod:`samplers.checkpoint`): with ``checkpoint`` a file path, the state is saved
    there atomically every ``checkpoint_every`` steps, at the end, and when the run is interrupted
    (``KeyboardInterrupt``, i.e. SIGINT); ``resume=True`` continues from that file, and the
    resumed run gives bit for bit the posterior of an uninterrupted one with the same seed (on
    the same machine and settings). A checkpoint written with other settings is refused. A
    :class:`SamplerError` raised by a step names the step.

    Example::

        post = run(DPS(num_steps=50), problem, prior, 16, seed=0, checkpoint="run.ckpt", checkpoint_every=5)
        post = run(DPS(num_steps=50), problem, prior, 16, seed=0, checkpoint="run.ckpt", resume=True)
    """
    if not isinstance(sampler, Sampler):
        raise TypeError(f"expected a Sampler, got {type(sampler).__name__}")
    if not isinstance(problem, InverseProblem):
        raise TypeError(f"expected an InverseProblem, got {type(problem).__name__}")
    if not isinstance(prior, Prior):
        raise TypeError(f"expected a Prior, got {type(prior).__name__}")
    num_samples = positive_int(num_samples, "num_samples")
    if checkpoint is None and resume:
        raise SamplerConfigError("resume=True needs a checkpoint file (--checkpoint FILE)")
    if checkpoint is not None:
        checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
    sampler.check(problem, prior)
    if device is not None:
        prior.to(resolve_device(device))
    device = prior.device
    if problem.device != device:
        problem = problem.to(device)
    if generator is None:
        generator = make_generator(seed, device)
    t0 = time.perf_counter()
    fp = None
    if checkpoint is not None:
        from samplers import checkpoint as ckpt

        fp = ckpt.fingerprint(sampler, problem, prior, num_samples, seed)
    if resume:
        state = ckpt.load_state(checkpoint, sampler, problem, prior, int(num_samples), generator, fp)
    else:
        state = sampler.init(problem, prior, int(num_samples), generator)
    start = state.step
    gen_state = generator.get_state() if checkpoint is not None else None
    total = sampler.num_steps()
    with tqdm(total=total, initial=min(start, total), disable=not progress, desc=type(sampler).__name__,
              leave=False) as bar:
        try:
            while not sampler.done(state):
                try:
                    state = sampler.step(state)
                except SamplerError as e:
                    if re.search(r"\bstep \d", str(e)):  # already names its step
                        raise
                    raise SamplerError(f"{e} (at step {state.step + 1}/{total})") from None
                bar.update(1)
                if checkpoint is not None:
                    gen_state = generator.get_state()  # the generator as this step left it
                    if state.step % int(checkpoint_every) == 0 or sampler.done(state):
                        ckpt.save_state(checkpoint, sampler, state, fp, gen_state)
                if callback is not None:
                    callback(state)
        except KeyboardInterrupt:
            if checkpoint is not None and state.step > start:
                ckpt.save_state(checkpoint, sampler, state, fp, gen_state)
            raise
    post = sampler.finalize(state)
    post.diagnostics = {**post.diagnostics, **state.counters.as_dict(), "num_samples": int(num_samples),
                        "wall_time_s": time.perf_counter() - t0, "device": str(device)}
    if resume:
        post.diagnostics["resumed_from_step"] = int(start)
    post.config = {"sampler": sampler.config(), "prior": prior.config(), **problem.config(), "seed": int(seed),
                   "versions": package_versions()}
    return post
