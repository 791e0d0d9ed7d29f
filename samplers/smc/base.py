"""Sequential Monte Carlo with diffusion priors: the shared machinery.

A diffusion SMC sampler runs ``N`` weighted particles down a sigma grid ``s_0 > s_1 > ... > s_K = 0``
(sigma space, ``x_s = x0 + s eps``). Each step from ``s`` to ``s'`` is

    1. pre-move weighting      log w_i += a_i                  (fully adapted samplers; else a_i = 0)
    2. resampling              systematic, when ESS < threshold * N
    3. move and post-weighting x_i' ~ q(. | x_i),  log w_i += b_i

and the evidence estimate multiplies the weighted means of the incremental weights (Del Moral 2004;
Chopin and Papaspiliopoulos 2020, ch. 10):

    log Z_hat = log mean_i exp(l0_i) + sum_steps log sum_i W_i exp(c_i),   W = normalised weights,

which stays unbiased for ``Z`` with or without resampling because the normalised weights are
uniform right after a resampling. Subclasses provide the initial draw, the (optional) pre-move
weight and the move; :class:`SMCSampler` owns resampling, ESS and evidence bookkeeping.

Also here: :class:`LinearGaussian`, the likelihood of ``y = A x + b + sigma_y e`` in the singular
basis of ``A`` with the Gaussian twist/tilt operations that MCGdiff, the ensemble sampler and
TDS's linear twist share.

Systematic resampling: Kitagawa (1996); ESS: Kong, Liu and Wong (1994), ``(sum w)^2 / sum w^2``.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import math
import time
import warnings
from dataclasses import dataclass

import torch

from forward_models.base import GRAM_CUTOFF
from forward_models.noise import Gaussian
from priors.base import Prior
from samplers.base import Sampler, State
from samplers.posterior import Posterior
from samplers.schedules import karras_sigmas
from samplers.steps import analytic_variance, ancestral_variance

__all__ = ["systematic_resample", "effective_sample_size", "should_resample", "log_mean_weight",
           "SMCSampler", "SMCState", "Move", "LinearGaussian", "LinearTwistSMC", "MAX_DENSE_DIM", "MAX_DENSE_ENTRIES", "GRAM_MIN_SIDE", "GRAM_CUTOFF", "REVERSE_VARIANCES", "WeightCollapseWarning", "thin_svd",
           "gram_eigh"]

_LOG_2PI = math.log(2.0 * math.pi)

#: choices of ``reverse_variance`` (:class:`SMCSampler`)
REVERSE_VARIANCES = ("analytic", "ancestral")

#: largest flattened input size for which a dense operator matrix is built and decomposed
MAX_DENSE_DIM = 8192

#: smallest side from which :func:`thin_svd` decomposes the Gram matrix instead of calling ``svd``
GRAM_MIN_SIDE = 256

#: largest dense operator (``prod(output) * prod(input)`` entries) :class:`LinearGaussian` builds; larger
#: operators (multi-coil MRI: 65536 x 4096) are decomposed matrix-free through their adjoint (:func:`gram_eigh`)
MAX_DENSE_ENTRIES = 40_000_000


def _gram_spectrum(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``G = Q diag(s^2) Q^T`` for a symmetric Gram matrix: ``(s, Q)`` in descending order, singular values
    below ``GRAM_CUTOFF s_max`` dropped (not resolved by the eigenvalues: :func:`thin_svd`)."""
    lam, Q = torch.linalg.eigh(G)
    lam, Q = lam.flip(0), Q.flip(1)  # descending
    s = lam.clamp_min(0).sqrt()
    keep = s > GRAM_CUTOFF * float(s.max()) if s.numel() else s > 0
    return s[keep], Q[:, keep]


def thin_svd(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Thin SVD ``A = U diag(s) Vh`` of a dense ``(m, d)`` matrix and the relative cut-off it supports.

    Small matrices (``min(m, d) < GRAM_MIN_SIDE``): ``torch.linalg.svd``, cut-off ``1e-12``. Larger ones
    through the symmetric eigenproblem of the smaller Gram matrix (Golub and Van Loan 2013, sec. 8.6):
    for ``m <= d``, ``A A^T = U diag(s^2) U^T`` and ``Vh = diag(1/s) U^T A`` (symmetrically for
    ``m > d``). This is ~3x faster than the SVD (a 2730 x 4096 CT matrix: 6.6 s against 22 s at one
    thread) but an eigenvalue carries an absolute error ~ ``eps * s_max^2``, so singular values below
    ``1e-5 s_max`` are not resolved: the cut-off returned is ``1e-5`` and callers drop what lies below it
    (directions observed ``1e5`` times more weakly than the strongest, treated as unobserved).
    """
    m, d = A.shape
    if min(m, d) < GRAM_MIN_SIDE:
        U, s, Vh = torch.linalg.svd(A, full_matrices=False)
        return U, s, Vh, 1e-12
    wide = m <= d
    s, Q = _gram_spectrum(A @ A.T if wide else A.T @ A)
    rel = GRAM_CUTOFF
    if wide:
        return Q, s, (Q.T @ A) / s[:, None], rel
    return (A @ Q) / s[None, :], s, Q.T, rel


#: operator decompositions kept for reuse by :class:`LinearGaussian` (a matrix-free ``(s, Vh)``: ``8 d^2``
#: bytes, 134 MB at d = 4096; a dense one adds ``U``, ``8 m r`` bytes: 268 MB for single-coil MRI 64 x 64)
GRAM_CACHE_SIZE = 2
_GRAM_CACHE: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()


def _cached(key: tuple, compute) -> tuple[object, float, bool]:
    """``(compute(), seconds it took, reused)``, memoised in the least-recently-used :data:`_GRAM_CACHE` of
    ``GRAM_CACHE_SIZE`` entries (a reused value reports the seconds of the call that computed it)."""
    if key in _GRAM_CACHE:
        _GRAM_CACHE.move_to_end(key)
        return (*_GRAM_CACHE[key], True)
    t0 = time.perf_counter()
    value = compute()
    _GRAM_CACHE[key] = (value, time.perf_counter() - t0)
    while len(_GRAM_CACHE) > GRAM_CACHE_SIZE:
        _GRAM_CACHE.popitem(last=False)
    return value, _GRAM_CACHE[key][1], False


def _tensor_digest(h, t: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and contents (values and indices of a sparse one) to hash ``h``."""
    t = t.detach().cpu()
    h.update(f"{t.dtype}:{t.layout}:{tuple(t.shape)}".encode())
    if t.layout == torch.sparse_coo:
        t = t.coalesce()
        parts = [t.indices(), t.values()]
    elif t.layout == torch.sparse_csr:
        parts = [t.crow_indices(), t.col_indices(), t.values()]
    else:
        parts = [t]
    for part in parts:
        part = part.contiguous()
        if part.numel():
            h.update(part.view(-1).view(torch.uint8).numpy().tobytes())


def _operator_fingerprint(fm, prior, shape) -> tuple:
    """Key of an operator decomposition: the operator's class, shapes, ``config()`` and a SHA-256 of
    every tensor it holds (parameters, buffers and plain tensor attributes of all its submodules), with
    the prior's identity and its ``to_physical`` at zero and at a fixed probe. Two runs on the same
    operator and prior (several samplers on one problem; a benchmark's instances sharing one mask)
    decompose it once; any change to a mask, coil map or normalisation gives a new key."""
    h = hashlib.sha256()
    modules = fm.modules() if isinstance(fm, torch.nn.Module) else [fm]
    for mod in modules:
        tensors = dict(mod.state_dict(keep_vars=False)) if isinstance(mod, torch.nn.Module) else {}
        tensors.update({k: v for k, v in vars(mod).items() if isinstance(v, torch.Tensor)})
        for name in sorted(tensors):
            h.update(f"{type(mod).__name__}.{name}".encode())
            _tensor_digest(h, tensors[name])
    config = fm.config() if callable(getattr(fm, "config", None)) else {}
    probe = torch.randn(1, *shape, generator=torch.Generator().manual_seed(12345), dtype=torch.float64)
    with torch.no_grad():
        t_probe = torch.cat([prior.to_physical(torch.zeros_like(probe)), prior.to_physical(probe)]).to("cpu", torch.float64)
    h.update(t_probe.numpy().tobytes())
    return (type(fm).__qualname__, tuple(fm.input_shape), tuple(fm.output_shape), repr(config), id(prior),
            str(prior.dtype), h.hexdigest())


def gram_eigh(normal, input_shape, chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values and right singular vectors of a linear map ``L`` from products with ``L^T L``.

    ``normal(x)`` returns ``L^T L x`` for a float64 batch ``(k, *input_shape)``. The Gram matrix
    ``G = L^T L`` is built ``chunk`` columns at a time from the basis vectors (memory ``O(d^2)``, never the
    ``O(m d)`` of ``L``'s matrix), then ``G = V diag(s^2) V^T`` (symmetric eigenproblem, float64; Golub and
    Van Loan 2013, sec. 8.6). As in :func:`thin_svd`'s Gram route, an eigenvalue carries an absolute error
    ~ ``eps s_max^2``, so singular values below ``GRAM_CUTOFF s_max`` are dropped (treated as unobserved).
    Returns ``(s, Vh)``, ``s`` descending and ``Vh = V^T`` of shape ``(r, d)``.
    """
    d = math.prod(input_shape)
    f64 = torch.float64
    G = torch.empty(d, d, dtype=f64)
    for i in range(0, d, chunk):
        k = min(chunk, d - i)
        e = torch.zeros(k, d, dtype=f64)
        e[torch.arange(k), torch.arange(i, i + k)] = 1.0
        G[i:i + k] = normal(e.reshape(k, *input_shape)).reshape(k, d).to(f64)
    s, V = _gram_spectrum(0.5 * (G + G.T))  # exact symmetry for eigh
    return s, V.T


def systematic_resample(log_weights: torch.Tensor, generator: torch.Generator | None = None,
                        num: int | None = None) -> torch.Tensor:
    """Ancestor indices by systematic resampling (Kitagawa 1996).

    One uniform ``u ~ U[0, 1)`` gives the points ``(u + j) / M``, j = 0..M-1; index ``i`` is drawn
    as often as points fall in ``[C_{i-1}, C_i)`` with ``C`` the cumulative normalised weights, so
    particle ``i`` has ``floor(M W_i)`` or ``ceil(M W_i)`` offspring and ``E[count_i] = M W_i``.
    """
    n = log_weights.shape[0]
    m = n if num is None else int(num)
    w = torch.softmax(log_weights.detach().to(torch.float64), 0)
    cdf = torch.cumsum(w, 0)
    cdf[-1] = 1.0
    dev = generator.device if generator is not None else cdf.device
    u = torch.rand(1, generator=generator, dtype=torch.float64, device=dev).to(cdf.device)
    points = (u + torch.arange(m, dtype=torch.float64, device=cdf.device)) / m
    idx = torch.searchsorted(cdf, points, right=True)
    return idx.clamp_(max=n - 1).to(log_weights.device)


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """``ESS = (sum_i w_i)^2 / sum_i w_i^2`` from unnormalised log-weights (Kong, Liu and Wong 1994)."""
    lw = log_weights.detach().to(torch.float64)
    return float(torch.exp(2.0 * torch.logsumexp(lw, 0) - torch.logsumexp(2.0 * lw, 0)))


def should_resample(log_weights: torch.Tensor, threshold: float) -> bool:
    """The ESS rule: resample when ``ESS < threshold * N`` (threshold 0: never, 1: unless uniform)."""
    return effective_sample_size(log_weights) < threshold * log_weights.shape[0]


def log_mean_weight(log_weights: torch.Tensor, log_increments: torch.Tensor) -> float:
    """``log sum_i W_i exp(c_i)`` with ``W`` the normalised ``exp(log_weights)``: one evidence factor."""
    lw = log_weights.detach().to(torch.float64)
    lc = log_increments.detach().to(torch.float64)
    return float(torch.logsumexp(torch.log_softmax(lw, 0) + lc, 0))


@dataclass
class Move:
    """What a subclass's move returns: new particles, post-move log-weight increments, the per-particle
    cache for the next step (tensors indexed by particle, resampled with them) and the cost."""

    x: torch.Tensor
    log_increment: torch.Tensor | None = None
    cache: dict = dataclasses.field(default_factory=dict)
    nfe: int = 0
    forward_evals: int = 0
    grad_evals: int = 0


@dataclasses.dataclass(kw_only=True)
class SMCState(State):
    """:class:`~samplers.base.State` of a diffusion SMC sampler."""

    sigmas: list[float]
    model: object
    cache: dict
    ess_history: list[float]
    log_evidence: float
    num_resampling: int


class SMCSampler(Sampler):
    """Base class of diffusion SMC samplers: resampling, ESS and evidence bookkeeping (module docstring).

    Subclasses implement :meth:`initial` (particles at ``s_0``, their log-weights, cache), optionally
    :meth:`pre_weight` (a weight known before the move, used by fully adapted samplers), and
    :meth:`move`. :meth:`setup` computes per-problem constants once (stored in ``extras["model"]``);
    :meth:`sigmas` gives the grid (the EDM schedule by default). ``state.extras`` holds
    ``sigmas``, ``cache``, ``ess_history`` (ESS before each resampling decision and at the end),
    ``log_evidence`` and ``num_resampling``. The posterior carries the final log-weights.

    Parameters
    ----------
    num_steps : number of EDM noise levels (``karras_sigmas``)
    resample_threshold : resample when ESS < threshold * N (0 never, 1 whenever weights differ)
    rho : EDM schedule exponent
    reverse_variance : variance of the prior's reverse kernel that the target path is built from:
        ``"analytic"`` (default; :func:`samplers.steps.analytic_variance`, Bao et al. 2022) or
        ``"ancestral"`` (the DDPM posterior variance, which under-disperses: BENCHMARKS.md, issue 5)

    Example: bootstrap SMC that reweights ancestral prior steps by the exact likelihood at the end::

        import torch
        from samplers.smc import SMCSampler, Move
        from samplers.steps import ancestral_step, sigma_batch

        class Bootstrap(SMCSampler):
            def initial(self, problem, prior, n, generator, model, sigmas):
                x = sigmas[0] * torch.randn(n, *prior.shape, generator=generator, dtype=prior.dtype)
                return Move(x, torch.zeros(n, dtype=prior.dtype))
            def move(self, state, x, cache, aux, s, s_next):
                x0 = state.prior.denoise(x, sigma_batch(s, x))
                x = ancestral_step(x, x0, s, s_next, state.generator)
                ll = state.problem.log_likelihood(state.prior.to_physical(x)) if s_next == 0 else 0 * x0[:, 0]
                return Move(x, ll, nfe=len(x))
    """

    #: the per-problem constants of :meth:`setup` are rebuilt by ``init`` when a run resumes
    static_fields = ("model", "sigmas")

    def __init__(self, num_steps: int = 100, resample_threshold: float = 0.5, rho: float = 7.0,
                 reverse_variance: str = "analytic"):
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be at least 1, got {num_steps}")
        if reverse_variance not in REVERSE_VARIANCES:
            raise ValueError(f"reverse_variance must be one of {REVERSE_VARIANCES}, got {reverse_variance!r}")
        self.reverse_variance = reverse_variance
        if not 0.0 <= float(resample_threshold) <= 1.0:
            raise ValueError(f"resample_threshold must lie in [0, 1], got {resample_threshold}")
        if not float(rho) > 0:
            raise ValueError(f"rho must be positive, got {rho}")
        self.steps = int(num_steps)
        self.resample_threshold = float(resample_threshold)
        self.rho = float(rho)

    # ------------------------------------------------------------ hooks for subclasses
    def num_steps(self) -> int:
        """Number of EDM levels; samplers that insert levels (MCGdiff) run ``len(extras['sigmas']) - 1`` steps."""
        return self.steps

    def setup(self, problem, prior) -> object:
        """Per-problem constants computed once (e.g. an SVD); ``None`` by default."""
        return None

    def sigmas(self, prior: Prior, model) -> list[float]:
        """The descending sigma grid ending at 0 (the EDM schedule by default)."""
        return karras_sigmas(self.steps, prior.sigma_min, prior.sigma_max, self.rho).tolist()

    def initial(self, problem, prior, n: int, generator, model, sigmas) -> Move:  # pragma: no cover
        """Particles at ``sigmas[0]`` with their initial log-weights (``log_increment``) and cache."""
        raise NotImplementedError

    def kernel_variance(self, x: torch.Tensor, x0: torch.Tensor, s: float, s_next: float,
                        log_weights: torch.Tensor | None = None) -> float:
        """Variance of the reverse kernel from ``s`` to ``s_next`` (``reverse_variance``); the analytic one
        is estimated on particles ``x`` with their denoised ``x0``, weighted by ``log_weights`` (None: equal)."""
        if self.reverse_variance == "ancestral":
            return ancestral_variance(s, s_next)
        return analytic_variance(x, x0, s, s_next, log_weights)

    def pre_weight(self, state: SMCState, s: float, s_next: float):
        """``(log-weight increment known before the move, aux)``; ``aux`` is a dict of per-particle
        tensors handed to :meth:`move` (resampled with the particles). Default: no pre-weight."""
        return None, {}

    def move(self, state: SMCState, x, cache: dict, aux: dict, s: float, s_next: float) -> Move:  # pragma: no cover
        """Move particles ``x`` (already resampled) from ``s`` to ``s_next``; return the post-move weights."""
        raise NotImplementedError

    # ------------------------------------------------------------ the generic loop
    def done(self, state: SMCState) -> bool:
        """Whether every level of the state's grid has been visited."""
        return state.step >= len(state.sigmas) - 1

    def init(self, problem, prior, num_samples, generator) -> SMCState:
        """Draw the initial particles, weight them and start the evidence estimate."""
        model = self.setup(problem, prior)
        sigmas = self.sigmas(prior, model)
        mv = self.initial(problem, prior, num_samples, generator, model, sigmas)
        lw = mv.log_increment if mv.log_increment is not None else mv.x.new_zeros(num_samples)
        lw = lw.detach().to(torch.float64)
        log_z = float(torch.logsumexp(lw, 0)) - math.log(num_samples)
        state = SMCState(mv.x.detach(), 0, problem, prior, generator, log_weights=torch.log_softmax(lw, 0),
                         sigmas=sigmas, model=model, cache=mv.cache, ess_history=[], log_evidence=log_z,
                         num_resampling=0)
        return dataclasses.replace(state, counters=state.counters.add(mv.nfe, mv.forward_evals, mv.grad_evals))

    def step(self, state: SMCState) -> SMCState:
        """Pre-weight, resample if the ESS is low, move, post-weight (module docstring)."""
        s, s_next = state.sigmas[state.step], state.sigmas[state.step + 1]
        lw, log_z = state.log_weights, state.log_evidence
        pre, aux = self.pre_weight(state, s, s_next)
        if pre is not None:
            pre = pre.detach().to(torch.float64)
            log_z += log_mean_weight(lw, pre)
            lw = _normalise(self, state, lw + pre)
        ess = effective_sample_size(lw)
        x, cache, n_res = state.x, state.cache, state.num_resampling
        if ess < self.resample_threshold * len(lw):
            idx = systematic_resample(lw, state.generator)
            x, cache, aux = x[idx], _take(cache, idx), _take(aux, idx)
            lw = torch.full_like(lw, -math.log(len(lw)))
            n_res += 1
        mv = self.move(state, x, cache, aux, s, s_next)
        if mv.log_increment is not None:
            post = mv.log_increment.detach().to(torch.float64)
            log_z += log_mean_weight(lw, post)
            lw = _normalise(self, state, lw + post)
        return self.advance(state, x=mv.x, nfe=mv.nfe, forward_evals=mv.forward_evals, grad_evals=mv.grad_evals,
                            log_weights=lw, cache=mv.cache, log_evidence=log_z, num_resampling=n_res,
                            ess_history=state.ess_history + [ess])

    def finalize(self, state: SMCState) -> Posterior:
        """Weighted posterior with diagnostics ``ess_history``, ``log_evidence``, ``num_resampling``,
        ``min_ess`` / ``min_ess_step`` and ``weight_collapse``: true (with a :class:`WeightCollapseWarning`)
        when the ESS fell below ``max(1.5, N / 100)`` at some step, i.e. nearly one particle carried the weight.
        Samplers in an operator's singular basis add ``basis_s`` (seconds its decomposition took) and
        ``basis_reused`` (true when this run took it from the cache, so ``wall_time_s`` excludes it)."""
        post = super().finalize(state)
        ess = state.ess_history + [effective_sample_size(state.log_weights)]
        n = len(state.log_weights)
        k = min(range(len(ess)), key=ess.__getitem__)
        collapse = ess[k] < max(1.5, n / 100.0)
        post.diagnostics = {**post.diagnostics, "ess_history": ess, "final_ess": ess[-1],
                            "log_evidence": float(state.log_evidence),
                            "num_resampling": int(state.num_resampling),
                            "num_levels": len(state.sigmas) - 1,
                            "min_ess": float(ess[k]), "min_ess_step": int(k), "weight_collapse": bool(collapse)}
        model = state.model
        lg = model.get("lg") if isinstance(model, dict) else None
        if isinstance(lg, LinearGaussian):  # the operator's decomposition: its cost and whether it was reused
            post.diagnostics.update(basis_s=lg.decomposition_s, basis_reused=lg.decomposition_reused)
        if collapse:
            warnings.warn(f"{type(self).__name__}: the particle weights collapsed (ESS {ess[k]:.2f} of {n} at step "
                          f"{k}); use more particles or steps", WeightCollapseWarning, stacklevel=2)
        return post


class WeightCollapseWarning(RuntimeWarning):
    """SMC weights collapsed onto (nearly) one particle at some step."""


def _normalise(sampler, state, log_weights: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` of unnormalised log-weights; NaN or all-zero weights raise, naming the step."""
    from samplers.errors import SamplerError

    if bool(torch.isnan(log_weights).any()):
        raise SamplerError(f"{type(sampler).__name__}: NaN log-weights at step {state.step + 1} "
                           "(the likelihood or the twist returned NaN)")
    if bool((log_weights == math.inf).any()):
        raise SamplerError(f"{type(sampler).__name__}: infinite log-weights at step {state.step + 1} "
                           "(the likelihood or the twist overflowed)")
    if not bool(torch.isfinite(log_weights).any()):
        _raise_collapse(sampler, state)
    return torch.log_softmax(log_weights, 0)


def _raise_collapse(sampler, state) -> None:
    """All weights zero: report the step (the twist or likelihood is far from every particle)."""
    from samplers.errors import SamplerError

    raise SamplerError(f"{type(sampler).__name__}: every particle weight is zero at step {state.step + 1}; "
                       "use more particles or steps")


def _take(tensors: dict, idx: torch.Tensor) -> dict:
    return {k: (v[idx] if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}


def _log_perp(perp2: float, n_perp: int, sigma_y: float) -> float:
    """``log N(y_perp; 0, sigma_y^2 I)`` of the data outside the operator's range (``n_perp`` entries,
    squared norm ``perp2``)."""
    return -0.5 * perp2 / sigma_y**2 - 0.5 * n_perp * (_LOG_2PI + 2 * math.log(sigma_y))


class LinearGaussian:
    """``y = A x + b + sigma_y e`` in the prior's model space, in the singular basis ``A = U diag(s) Vh``.

    With ``y_bar = U^T (y - b)`` (r entries, r = rank) and ``z = Vh x``, the likelihood factorises:
    ``log p(y | x) = sum_i log N(y_bar_i; s_i z_i, sigma_y^2) + log N(y_perp; 0, sigma_y^2 I)`` where
    ``y_perp`` is the part of ``y - b`` outside ``range(U)`` (present when rank < dy). SMC twists
    replace ``sigma_y^2`` by a per-coordinate variance ``w_i`` (:meth:`log_twist`), and a Gaussian
    kernel ``N(x'; m, v I)`` tilted by such a twist has closed-form samples and normaliser
    (:meth:`tilted_sample`):

        x'_i | . ~ N(m_i + v s_i (y_bar_i - s_i m_i) / (s_i^2 v + w_i),  v w_i / (s_i^2 v + w_i)),
        int N(x'; m, v I) N(y_bar; s z', w) dx' = N(y_bar; s z_m, s^2 v + w)        (per coordinate).

    Built by :meth:`from_problem`: the operator's own ``svd()`` when it has one and the prior's
    ``to_physical`` is the identity; otherwise a dense matrix of ``x -> F(to_physical(x)) - b``
    (``b = F(to_physical(0))``; assumes ``to_physical`` affine, as normalisations are), limited to
    ``MAX_DENSE_DIM`` inputs, decomposed by :func:`thin_svd`. An operator whose dense matrix would
    exceed ``MAX_DENSE_ENTRIES`` (multi-coil MRI) is decomposed matrix-free from its ``adjoint`` by
    :func:`gram_eigh`; ``U`` is then ``None`` (only ``y_bar = U^T (y - b)`` and ``Vh`` are used).
    Either decomposition is kept (:data:`GRAM_CACHE_SIZE` of them, keyed by :func:`_operator_fingerprint`)
    for the next run on the same operator and prior: several samplers on one problem, or a benchmark's
    instances sharing one mask, decompose it once.
    """

    def __init__(self, U, s, Vh, y_bar, sigma_y: float, log_perp: float, input_shape, *,
                 decomposition_s: float = 0.0, decomposition_reused: bool = False):
        self.U, self.s, self.Vh, self.y_bar = U, s, Vh, y_bar
        self.sigma_y = float(sigma_y)
        self.log_perp = float(log_perp)
        self.input_shape = tuple(input_shape)
        #: seconds the operator's decomposition took when computed, and whether this instance reused it
        self.decomposition_s = float(decomposition_s)
        self.decomposition_reused = bool(decomposition_reused)

    @classmethod
    def from_problem(cls, problem, prior, who: str = "this sampler", max_dense_dim: int = MAX_DENSE_DIM):
        """Decompose the problem's operator (class docstring); clear errors for unusable problems."""
        fm = problem.forward_model
        if not fm.linear:
            raise ValueError(f"{who} needs a linear forward model, but {type(fm).__name__} is not linear")
        if not isinstance(problem.noise, Gaussian):
            raise ValueError(f"{who} needs Gaussian noise, got {type(problem.noise).__name__}")
        f64 = torch.float64
        y = problem.y.to(f64).reshape(-1)
        identity_map = type(prior).to_physical is Prior.to_physical
        with torch.no_grad():
            if identity_map and callable(getattr(fm, "svd", None)):
                t0 = time.perf_counter()
                U, s, Vh = (t.to(f64) for t in fm.svd())
                seconds, reused = time.perf_counter() - t0, False
                b = torch.zeros_like(y)
                rel = 1e-12
            else:
                d = math.prod(prior.shape)
                if d > max_dense_dim:
                    raise ValueError(f"{who} needs the operator's SVD: {type(fm).__name__} has no svd() and "
                                     f"{d} inputs exceed the dense limit of {max_dense_dim}")
                dev = prior.device
                if y.numel() * d > MAX_DENSE_ENTRIES:
                    return cls._matrix_free(problem, prior, y)

                def dense():
                    zero = prior.to_physical(torch.zeros(1, *prior.shape, dtype=prior.dtype, device=dev))
                    b = fm(zero).to(f64).reshape(-1)
                    eye = torch.eye(d, dtype=prior.dtype, device=dev).reshape(d, *prior.shape)
                    A = (fm(prior.to_physical(eye)).to(f64).reshape(d, -1) - b).T
                    return (*thin_svd(A), b)

                (U, s, Vh, rel, b), seconds, reused = _cached(
                    ("dense", str(dev), *_operator_fingerprint(fm, prior, prior.shape)), dense)
        keep = s > rel * float(s.max()) if s.numel() else s > 0
        U, s, Vh = U[:, keep], s[keep], Vh[keep]
        r = y - b
        y_bar = U.T @ r
        perp = r - U @ y_bar
        n_perp = y.numel() - int(keep.sum())
        sy = float(problem.noise.sigma)
        log_perp = _log_perp(float(perp @ perp), n_perp, sy)
        dt = prior.dtype
        return cls(U.to(dt), s.to(dt), Vh.to(dt), y_bar.to(dt), sy, log_perp, prior.shape,
                   decomposition_s=seconds, decomposition_reused=reused)

    @classmethod
    def _matrix_free(cls, problem, prior, y: torch.Tensor):
        """The basis of ``L x = F(to_physical(x)) - F(to_physical(0))`` from the operator's ``adjoint``
        (:func:`gram_eigh`), in float64 on the CPU, on a float64 copy of the forward model (the problem's
        own is left as it is). With ``T`` the linear part of ``to_physical``, ``L^T w = T^T F^T w`` (``T^T``
        by autograd through ``to_physical``), ``y_bar = U^T r = diag(1/s) Vh L^T r`` and
        ``||r - U y_bar||^2 = ||r||^2 - ||y_bar||^2`` for ``r = y - F(to_physical(0))``. ``U`` is ``None``."""
        f64 = torch.float64
        fm = problem.forward_model
        if isinstance(fm, torch.nn.Module):
            fm = copy.deepcopy(fm).to(device="cpu", dtype=f64)
        shape = tuple(prior.shape)
        z0 = prior.to_physical(torch.zeros(1, *shape, dtype=f64))

        def t_transpose(u):  # T^T u = grad_x <to_physical(x), u>
            with torch.enable_grad():
                x = torch.zeros(len(u), *shape, dtype=f64, requires_grad=True)
                return torch.autograd.grad((prior.to_physical(x) * u).sum(), x)[0]

        def normal(x):  # L^T L x = T^T F^T F (T x), T x = to_physical(x) - to_physical(0)
            return t_transpose(fm.adjoint(fm(prior.to_physical(x) - z0)).to(f64))

        (s, Vh), seconds, reused = _cached(("matrix-free", *_operator_fingerprint(fm, prior, shape)),
                                           lambda: gram_eigh(normal, shape))
        r = y.cpu() - fm(z0).to(f64).reshape(-1)
        y_bar = (Vh @ t_transpose(fm.adjoint(r.reshape(1, *fm.output_shape)).to(f64)).reshape(-1)) / s
        perp2 = max(float(r @ r) - float(y_bar @ y_bar), 0.0)
        n_perp = y.numel() - s.numel()
        sy = float(problem.noise.sigma)
        log_perp = _log_perp(perp2, n_perp, sy)
        dt, dev = prior.dtype, prior.device
        return cls(None, s.to(dev, dt), Vh.to(dev, dt), y_bar.to(dev, dt), sy, log_perp, shape,
                   decomposition_s=seconds, decomposition_reused=reused)

    @property
    def rank(self) -> int:
        """Number r of retained singular values."""
        return self.s.numel()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``z = Vh x`` for a batch ``(B, *shape)`` -> ``(B, r)``."""
        return x.reshape(x.shape[0], -1) @ self.Vh.T

    def log_twist(self, z: torch.Tensor, var: torch.Tensor, active: torch.Tensor | None = None, *,
                  y: torch.Tensor | None = None, gain: torch.Tensor | None = None) -> torch.Tensor:
        """``sum_{i active} log N(y_bar_i; s_i z_i, var_i) + log_perp`` for ``z`` of shape ``(B, r)`` -> (B,).

        ``y`` ((r,) or per particle (B, r)) and ``gain`` (r,) replace ``y_bar`` and ``s`` when given
        (MCGdiff's bridge observations between two levels).
        """
        y = self.y_bar if y is None else y
        gain = self.s if gain is None else gain
        terms = -0.5 * (y - gain * z) ** 2 / var - 0.5 * (torch.log(var) + _LOG_2PI)
        if active is not None:
            terms = torch.where(active, terms, torch.zeros_like(terms))
        return terms.sum(1) + self.log_perp

    def tilted_sample(self, mean: torch.Tensor, v: float, var: torch.Tensor, active: torch.Tensor | None,
                      generator, *, y: torch.Tensor | None = None, gain: torch.Tensor | None = None,
                      z_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``N(x'; mean, v I) * prod_{i active} N(y_bar_i; s_i z'_i, var_i)`` exactly (class docstring).

        Returns ``(x', log normaliser)``; ``log_perp`` is included in the normaliser. ``var_i = 0``
        pins ``z'_i = y_bar_i / s_i``. ``y`` / ``gain`` replace ``y_bar`` / ``s`` as in :meth:`log_twist`;
        ``z_mean`` is ``Vh mean`` when the caller has it. A projection of a few particles reads all of ``Vh``
        (memory-bound: 30-view CT's ``Vh`` is 2730 x 4096, ~45 MB in float32), so the draw makes two passes
        over it, ``Vh noise`` (``Vh x = Vh mean + sqrt(v) Vh noise``) and the back-projection, and no more.
        """
        y = self.y_bar if y is None else y
        g = self.s if gain is None else gain
        noise = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        sd = math.sqrt(max(v, 0.0))
        x = mean + sd * noise
        zm = self.project(mean) if z_mean is None else z_mean
        zx = zm + sd * self.project(noise)
        total = g**2 * v + var
        k = v * g / total
        post_mean = zm + k * (y - g * zm)
        post_sd = torch.sqrt((v * var / total).clamp_min(0.0))
        zn = torch.randn(zm.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        z_new = post_mean + post_sd * zn
        if active is not None:
            z_new = torch.where(active, z_new, zx)
        flat = x.reshape(x.shape[0], -1) + (z_new - zx) @ self.Vh
        return flat.reshape(mean.shape), self.log_twist(zm, total, active, y=y, gain=g)


class LinearTwistSMC(SMCSampler):
    """Fully adapted SMC for linear-Gaussian problems: the ancestral kernel tilted by a Gaussian twist.

    A subclass gives the twist at level ``k`` as per-coordinate variances in the singular basis,
    :meth:`twist` -> ``(var (r,), active (r,))``, meaning
    ``g_k(x) = prod_{i active} N(y_bar_i; s_i z_i, var_i)``; ``var_i = 0`` pins ``z_i = y_bar_i / s_i``
    (a coordinate observed exactly at that level, absorbed into the normaliser and then dropped).
    From level ``k`` (sigma ``s``) to ``k + 1`` (``s'``), with the ancestral kernel ``N(m(x), v I)``,
    ``m = D + (s'^2/s^2)(x - D)``, ``v = s'^2 (1 - s'^2/s^2)``:

        pre-move weight   log int N(x'; m, v I) g_{k+1}(x') dx' - log g_k(x)    (depends on x only)
        move              x' ~ N(x'; m, v I) g_{k+1}(x') / normaliser             (exact, closed form)

    which is the locally optimal proposal for these targets (Doucet, Godsill and Andrieu 2000), so
    the particles can be resampled before they move. The initial draw samples ``N(0, s_0^2 I) g_0``
    exactly. No network gradients: one NFE per particle and step.
    """

    needs_linear = True

    def setup(self, problem, prior):
        """The operator's singular basis (:class:`LinearGaussian`)."""
        return {"lg": LinearGaussian.from_problem(problem, prior, type(self).__name__)}

    def check(self, problem, prior) -> None:
        """Linear forward model and Gaussian noise, with one-line reasons."""
        fm = problem.forward_model
        if not fm.linear:
            raise ValueError(f"{type(self).__name__} needs a linear forward model (it works in the operator's "
                             f"singular basis), but {type(fm).__name__} is not linear; use TDS or DPS")
        if not isinstance(problem.noise, Gaussian):
            raise ValueError(f"{type(self).__name__} needs Gaussian noise, got {type(problem.noise).__name__}")
        super().check(problem, prior)

    def twist(self, model: dict, k: int, sigmas) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """``(var, active)`` of the twist ``g_k`` (class docstring)."""
        raise NotImplementedError

    def initial(self, problem, prior, n, generator, model, sigmas) -> Move:
        """Exact draw from ``N(0, s_0^2 I) g_0`` (its normaliser is the initial weight)."""
        lg = model["lg"]
        var, active = self.twist(model, 0, sigmas)
        mean = torch.zeros(n, *prior.shape, dtype=prior.dtype, device=prior.device)
        x, log_norm = lg.tilted_sample(mean, sigmas[0] ** 2, var, active, generator)
        return Move(x, log_norm, forward_evals=n)

    def pending_twist(self, model: dict, k: int, sigmas) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of ``g_k`` still to be divided out at the next step: by default all of it except
        pinned coordinates (``var = 0``), which were absorbed into the normaliser when pinned."""
        var, active = self.twist(model, k, sigmas)
        active = active & (var > 0)
        return torch.where(active, var, torch.ones_like(var)), active

    def step_potential(self, model: dict, k: int, sigmas) -> tuple:
        """``(gain, var, active)`` of the potential the move to level ``k`` is tilted by.

        Default: the twist ``g_k`` (:meth:`twist`) with the singular values as gains (``gain = None``).
        A subclass whose potential observes ``y_bar`` through other gains, or whose datum depends on the
        current particles (:meth:`step_datum`), overrides both (MCGdiff's bridge observations).
        """
        return (None, *self.twist(model, k, sigmas))

    def step_datum(self, model: dict, k: int, z: torch.Tensor):
        """The datum of the potential of :meth:`step_potential` per particle ``(B, r)``, or ``None`` for ``y_bar``;
        ``z = Vh x`` are the current particles in the singular basis."""
        return None

    def pre_weight(self, state, s, s_next):
        """Normaliser of the tilted kernel over the current twist; hands the kernel mean (and ``Vh`` of it) to :meth:`move`."""
        from samplers.steps import sigma_batch

        model, sigmas, k = state.model, state.sigmas, state.step
        x = state.x
        with torch.no_grad():
            x0 = state.prior.denoise(x, sigma_batch(s, x))
            ratio = (s_next / s) ** 2
            mean = x0 + ratio * (x - x0)
            v = self.kernel_variance(x, x0, s, s_next, state.log_weights)
            lg = model["lg"]
            # one pass over Vh for both (a projection of a few particles is memory-bound: tilted_sample)
            z, z_mean = lg.project(torch.cat([x, mean])).split(len(x))
            gain, var, active = self.step_potential(model, k + 1, sigmas)
            y = self.step_datum(model, k + 1, z)
            g = lg.s if gain is None else gain
            log_norm = lg.log_twist(z_mean, g**2 * v + var, active, y=y, gain=gain)
            pending_var, pending = self.pending_twist(model, k, sigmas)
            pre = log_norm - lg.log_twist(z, pending_var, pending)
        return pre, {"mean": mean, "z_mean": z_mean, "y": y,
                     "v": torch.full((len(x),), v, dtype=torch.float64, device=x.device)}

    def move(self, state, x, cache, aux, s, s_next) -> Move:
        """Exact draw from the tilted kernel (``aux`` follows the resampled ancestors)."""
        model, sigmas, k = state.model, state.sigmas, state.step
        v = float(aux["v"][0])  # the variance pre_weight integrated the potential against
        gain, var, active = self.step_potential(model, k + 1, sigmas)
        x_new, _ = model["lg"].tilted_sample(aux["mean"], v, var, active, state.generator, y=aux["y"], gain=gain,
                                             z_mean=aux.get("z_mean"))
        n = len(x)
        return Move(x_new, None, nfe=n, forward_evals=2 * n)
