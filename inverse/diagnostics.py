"""Does the posterior explain the data? Checks run on every reconstruction, for every sampler.

A posterior (samples ``x_s`` with normalised weights ``w_s``) is checked against its measurement
``y = F(x) + noise`` in four ways; each check adds numbers to the diagnostics and, when it fails, a
sentence to ``diagnostics["warnings"]``.

**Data misfit.** With the standardised residual ``e(x) = (y - F(x)) / s`` (``s = sigma`` for
``Gaussian(sigma)``; ``s_i = sqrt(F(x)_i / gain)`` for ``Poisson(gain)``, Pearson's residual), the
normalised misfit is ``r(x) = ||e(x)|| / sqrt(m)`` over the ``m`` measured entries (entries that are
exactly zero in ``F(mean)``, such as k-space outside an MRI sampling mask, are left out: they carry no
information on ``x``, and would pull the misfit towards 1, or towards 0 where the recorded ``y`` is zero
there). At the truth,
``m r^2 ~ chi^2_m``, so ``r`` lies in ``[sqrt(q_0.01 / m), sqrt(q_0.99 / m)]`` (chi-square
quantiles; about ``1 -+ 2.33 sqrt(2 / m) / 2``) in 98% of measurements. Posterior samples of a
well-specified model are exchangeable with the truth given ``y``, so the per-sample misfits
``r(x_s)`` follow the same law (their distribution is reported as the 5%, 50% and 95% weighted
quantiles). The posterior mean fits better than any one sample: for a linear-Gaussian problem
``E r(mean)^2 = 1 - tr(H) / m`` with ``H`` the hat matrix, so a mean misfit slightly *below* the
range is expected and never warned about. The ensemble's spread in data space, in noise units, is
``d^2 = (1/m) sum_i v_i / s_i^2`` (``v_i`` below); under the model ``r(mean)^2 + d^2 ~= 1`` (the mean's
residual and the spread share the noise budget). Approximate samplers (DPS at a few dozen steps) leave
the mean above the range even where the prior fits, with samples spread far more widely than that, so
the excess ``r(mean)^2 - 1`` is small beside ``d^2``. The posterior does not explain the data, and the
prior probably does not fit these measurements (a warning, with what to try), when the mean misfit is
above the 99% quantile and either above :data:`MISFIT_HIGH`, or above :data:`MISFIT_FLOOR` with an
excess above :data:`MISFIT_SPREAD_RATIO` ``d^2`` (the spread does not account for the misfit). (These
thresholds were set on simulated CT and MRI measurements of phantoms, which the shipped prior fits, and
of real images, which it does not: docs/diagnostics.md.) Above :data:`NOISE_FACTOR` the misfit is orders
of magnitude above the noise level, which points at the noise sigma or the units of ``y`` instead.

**Prior range.** Samples further than :data:`RANGE_WARN` prior ranges outside the prior's data range
``[lo, hi]`` (its normalisation: model space ``[-1, 1]``, or the means of an analytic prior
``+- 3`` standard deviations) are far from anything the prior can produce (a warning); further than
:data:`RANGE_ERROR` ranges, or non-finite, the result is certainly meaningless (a diverged sampler)
and :class:`samplers.SamplerError` is raised.

**Ensemble spread in data space.** The predictive interval of entry ``i`` is
``F(mean)_i -+ z_0.95 sqrt(v_i + s_i^2)`` with ``v_i`` the weighted variance of ``F(x_s)_i`` over the
ensemble (noise included). For a well-specified posterior at least 90% of the measured entries lie in
it (``E (y - F(mean))_i^2 + v_i ~= s_i^2`` for a linear-Gaussian problem, so the interval is
conservative); a fraction below :data:`DATA_COVERAGE_FLOOR` means the ensemble's spread is far below
its error against the data.

**Pixel coverage** (when the truth is known). The weighted 5%-95% interval of ``N`` exchangeable
samples contains the truth with probability about ``0.9 (N - 1) / (N + 1)`` (the truth's rank among
``N + 1`` draws is uniform; ``N`` is the effective sample size for weighted posteriors): 70% for 8
samples. Coverage below :data:`PIXEL_COVERAGE_FRACTION` of that nominal value flags a collapsed
ensemble whose pixel-wise standard deviation understates the error.

Example::

    import torch
    from forward_models import Gaussian, InverseProblem, MatrixOperator
    from priors import GaussianPrior
    from inverse.diagnostics import diagnose
    from samplers import Posterior

    op = MatrixOperator(torch.eye(4, dtype=torch.float64))
    problem = InverseProblem.simulate(op, Gaussian(0.1), torch.zeros(4, dtype=torch.float64), seed=0)
    post = Posterior(torch.zeros(16, 4, dtype=torch.float64) + 0.01 * torch.randn(16, 4, dtype=torch.float64))
    d = diagnose(post, problem, prior=GaussianPrior(torch.zeros(4), std=1.0))
    d["misfit"], d["misfit_expected"], d["warnings"]
"""

from __future__ import annotations

import math

import torch

from forward_models import InverseProblem
from forward_models.noise import Gaussian, Poisson
from inverse.metrics import predictive_coverage
from samplers import Posterior
from samplers.errors import SamplerError

__all__ = ["MISFIT_FLOOR", "MISFIT_SPREAD_RATIO", "MISFIT_HIGH", "NOISE_FACTOR", "RANGE_WARN", "RANGE_ERROR",
           "DATA_COVERAGE_FLOOR", "PIXEL_COVERAGE_FRACTION", "MAX_FORWARD_SAMPLES", "misfit_range",
           "nominal_coverage", "prior_data_range", "check_posterior", "diagnose"]

#: a mean misfit above this (and above the 99% chi-square quantile) that the ensemble's spread does not account
#: for (excess ``r^2 - 1`` above MISFIT_SPREAD_RATIO times the data-space spread ``d^2``) means the prior does not fit
MISFIT_FLOOR = 1.5
#: see MISFIT_FLOOR
MISFIT_SPREAD_RATIO = 0.3
#: a mean misfit above this means the prior does not fit the data, however widely the samples spread
MISFIT_HIGH = 4.0
#: a mean misfit above this is orders of magnitude above the noise level: a wrong sigma or wrong units of y
NOISE_FACTOR = 1e3
#: samples further than this many prior ranges outside the prior's data range: a warning
RANGE_WARN = 10.0
#: samples further than this many prior ranges outside the prior's data range: a SamplerError
RANGE_ERROR = 1e3
#: fraction of measured entries inside the ensemble's 90% predictive intervals below which the spread is flagged
DATA_COVERAGE_FLOOR = 0.5
#: pixel coverage below this fraction of its nominal value (:func:`nominal_coverage`) is flagged
PIXEL_COVERAGE_FRACTION = 0.5
#: ensemble members whose forward model is evaluated at most (a seeded equally weighted resample beyond it)
MAX_FORWARD_SAMPLES = 64

_Z95 = 1.6448536269514722  # standard normal 95% quantile: two-sided 90% interval


def misfit_range(m: int, levels=(0.01, 0.99)) -> tuple[float, float]:
    """Range of the normalised misfit ``r = ||e|| / sqrt(m)`` at the truth: ``sqrt(chi2.ppf(levels, m) / m)``."""
    from scipy.stats import chi2

    m = max(int(m), 1)
    lo, hi = (math.sqrt(float(chi2.ppf(q, m)) / m) for q in levels)
    return lo, hi


def nominal_coverage(n_eff: float, level: float = 0.9) -> float:
    """Expected coverage of the ``level`` interval from ``n_eff`` exchangeable samples: ``level (n - 1) / (n + 1)``."""
    n = float(n_eff)
    return 0.0 if n <= 1 else level * (n - 1.0) / (n + 1.0)


def prior_data_range(prior) -> tuple[float, float] | None:
    """Physical range ``(lo, hi)`` of a prior's data, or None when unknown.

    Network priors: the image of model space ``[-1, 1]`` under their normalisation (their training data
    are scaled onto it). Gaussian and Gaussian-mixture priors: the component means ``-+ 3`` standard
    deviations (largest marginal variance).
    """
    norm = getattr(prior, "normalisation", None)
    if norm is not None and hasattr(norm, "to_physical"):
        a, b = float(norm.to_physical(-1.0)), float(norm.to_physical(1.0))
        return min(a, b), max(a, b)
    means = getattr(prior, "means", None)
    if isinstance(means, torch.Tensor) and hasattr(prior, "isotropic_variance"):
        cov = None if getattr(prior, "isotropic", True) else getattr(prior, "covariances", None)
        var = prior.isotropic_variance if cov is None else float(cov.diagonal(dim1=-2, dim2=-1).max())
        sd = 3.0 * math.sqrt(var)
        lo, hi = float(means.min()) - sd, float(means.max()) + sd
        lo, hi = float(prior.to_physical(torch.tensor(lo))), float(prior.to_physical(torch.tensor(hi)))
        return min(lo, hi), max(lo, hi)
    return None


def _noise_std(noise, y_clean: torch.Tensor) -> torch.Tensor | None:
    """Standard deviation of each measured entry around ``y_clean`` (None for noise models it does not know)."""
    if isinstance(noise, Gaussian):
        return torch.full_like(y_clean, float(noise.sigma))
    if isinstance(noise, Poisson):
        return (y_clean.clamp_min(1.0 / noise.gain) / noise.gain).sqrt()
    return None


def _forward(fm, x: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """``F(x)`` in float64, in batches, with ``x`` cast to the model's own floating dtype (float64 if none)."""
    dtype = next((t.dtype for t in list(fm.parameters()) + list(fm.buffers()) if t.is_floating_point()), x.dtype)
    with torch.no_grad():
        return torch.cat([fm(x[i:i + batch].to(dtype)).to(torch.float64) for i in range(0, len(x), batch)])


def _wquantile(v: torch.Tensor, w: torch.Tensor, qs) -> list[float]:
    """Weighted quantiles with mid-point plotting positions (as :meth:`Posterior.quantile`); zero weights skipped."""
    import numpy as np

    keep = w > 0
    v, w = v[keep], w[keep] / w[keep].sum()
    order = torch.argsort(v)
    cw = torch.cumsum(w[order], 0) - 0.5 * w[order]
    return [float(np.interp(q, cw.numpy(), v[order].numpy())) for q in qs]


def _range_check(post: Posterior, prior_range, out: dict) -> None:
    x = post.samples
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x.reshape(len(x), -1))).any(1).sum())
        raise SamplerError(f"{bad} of {post.num_samples} posterior samples contain NaN or Inf: the sampler diverged "
                           "(try fewer guidance / a smaller step size, or more steps)")
    lo_s, hi_s = float(x.min()), float(x.max())
    out["sample_range"] = [lo_s, hi_s]
    if prior_range is None:
        return
    lo, hi = (float(v) for v in prior_range)
    out["prior_range"] = [lo, hi]
    width = max(hi - lo, 1e-300)
    beyond = max(lo - lo_s, hi_s - hi, 0.0) / width
    out["prior_ranges_outside"] = beyond
    where = (f"the posterior samples lie in [{lo_s:.4g}, {hi_s:.4g}], {beyond:.3g} prior ranges outside the "
             f"prior's data range [{lo:.4g}, {hi:.4g}]")
    if beyond > RANGE_ERROR:
        raise SamplerError(f"{where}: the sampler diverged and the result is meaningless (a guidance scale or step "
                           "size too large?)")
    if beyond > RANGE_WARN:
        out["warnings"].append(f"{where}: the sampler may have diverged (a guidance scale or step size too large?)")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e4 or abs(v) < 1e-3 else f"{v:.3f}"


def _misfit_checks(post, fm, y, noise, out: dict) -> None:
    """Mean and per-sample misfits, data-space coverage (module docstring)."""
    y = y.to(torch.float64)
    mean = post.mean().to(torch.float64)
    f_mean = _forward(fm, mean[None])[0]
    s = _noise_std(noise, f_mean)
    if s is None:
        out["misfit"] = float("nan")
        return
    measured = f_mean != 0  # entries F never fills (outside an MRI sampling mask) carry no information on x
    if not bool(measured.any()):
        measured = torch.ones_like(measured)
    y, f_mean, s = y[measured], f_mean[measured], s[measured]
    r = (y - f_mean) / s
    m = r.numel()
    out["measured_entries"] = int(m)
    misfit = float(r.norm() / math.sqrt(m))
    lo, hi = misfit_range(m)
    out["misfit"] = misfit
    out["misfit_expected"] = [lo, hi]
    x, w = post.samples, post.weights().cpu()
    if post.num_samples > MAX_FORWARD_SAMPLES:
        idx = torch.multinomial(w, MAX_FORWARD_SAMPLES, replacement=True, generator=torch.Generator().manual_seed(0))
        x, w = x[idx], torch.full((MAX_FORWARD_SAMPLES,), 1.0 / MAX_FORWARD_SAMPLES, dtype=torch.float64)
    per, spread = [], torch.zeros_like(f_mean)
    for i in range(0, len(x), 8):  # streamed: one batch of F(x_s) in memory at a time
        for j, fs in enumerate(_forward(fm, x[i:i + 8].to(torch.float64))[:, measured], start=i):
            per.append(float(((y - fs) / _noise_std(noise, fs)).norm()) / math.sqrt(m))
            spread += float(w[j]) * (fs - f_mean) ** 2
    out["misfit_samples"] = _wquantile(torch.tensor(per, dtype=torch.float64), w, (0.05, 0.5, 0.95))
    denom = 1.0 - float((w**2).sum())
    v = spread / denom if denom > 0 else torch.zeros_like(f_mean)
    inside = (y - f_mean).abs() <= _Z95 * (v + s**2).sqrt()
    out["data_coverage_90"] = float(inside.double().mean())
    spread2 = float((v / s**2).mean())
    out["data_spread"] = math.sqrt(spread2)
    unexplained = misfit**2 - 1.0 > MISFIT_SPREAD_RATIO * spread2
    if misfit > NOISE_FACTOR:
        sig = f" {noise.sigma:.3g}" if isinstance(noise, Gaussian) else ""
        out["warnings"].append(f"the data misfit {_fmt(misfit)} is orders of magnitude above the noise level "
                               f"(expected {lo:.2f}-{hi:.2f}): check the noise sigma{sig} and the units of y")
    elif misfit > max(MISFIT_FLOOR, hi) and (unexplained or misfit > MISFIT_HIGH):
        out["prior_mismatch"] = True
        out["warnings"].append(f"the posterior does not explain the data (misfit {misfit:.2f}, expected "
                               f"{lo:.2f}-{hi:.2f}): the prior may not fit these measurements (or the sampler did not "
                               "converge); try --sampler mcg or a prior trained on similar data")
    if out["data_coverage_90"] < DATA_COVERAGE_FLOOR:
        out["warnings"].append(f"the ensemble's spread is far below its error against the data: "
                               f"{100 * out['data_coverage_90']:.1f}% of the measurements lie in its 90% predictive "
                               "intervals (noise included; at least 90% expected): its uncertainty is understated")


def _truth_checks(post: Posterior, truth: torch.Tensor, out: dict) -> None:
    t = truth.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        out["warnings"].append("the truth contains NaN or Inf: errors against it are not computed")
        return
    if post.num_samples < 2:
        return
    q = post.quantile([0.05, 0.95]).to(torch.float64)
    cov = float(((t >= q[0]) & (t <= q[1])).double().mean())
    nominal = nominal_coverage(post.ess())
    out["coverage_90"] = cov
    out["coverage_90_nominal"] = nominal
    if post.log_weights is None:
        out["coverage_90_predictive"] = predictive_coverage(post.samples, t)
    if cov < PIXEL_COVERAGE_FRACTION * nominal:
        out["warnings"].append(f"the ensemble's spread is far below its error: its 90% pixel intervals cover "
                               f"{100 * cov:.1f}% of the truth (about {100 * nominal:.0f}% expected from "
                               f"{post.ess():.3g} effective samples): its uncertainty is understated")


def check_posterior(post: Posterior, forward_model, y: torch.Tensor, noise, *, prior_range=None,
                    truth: torch.Tensor | None = None) -> dict:
    """The checks of the module docstring as a JSON dict; ``warnings`` lists the failed ones.

    Args:
        post: the posterior (physical units).
        forward_model: ``F`` (noise-free, batched); evaluated at the mean and at up to
            :data:`MAX_FORWARD_SAMPLES` samples.
        y: the measurement; ``noise``: its noise model (``Gaussian`` or ``Poisson``; others skip the misfit).
        prior_range: ``(lo, hi)`` of the prior's data in physical units (:func:`prior_data_range`), or None.
        truth: the ground truth, when known (pixel coverage).

    Keys: ``misfit``, ``misfit_expected`` (1%/99% range), ``misfit_samples`` (5/50/95% quantiles of the
    per-sample misfits), ``data_spread`` (``d``), ``data_coverage_90``, ``measured_entries``, ``sample_range``,
    ``prior_range``, ``prior_ranges_outside``, ``coverage_90``, ``coverage_90_nominal`` and (equal weights)
    ``coverage_90_predictive`` (:func:`inverse.metrics.predictive_coverage`) (truth known),
    ``warnings`` (also naming collapsed SMC weights that the sampler recorded as ``diagnostics["weight_collapse"]``).

    Raises:
        SamplerError: non-finite samples, or samples more than :data:`RANGE_ERROR` prior ranges outside
            the prior's data range.
    """
    out: dict = {"warnings": []}
    _range_check(post, prior_range, out)
    if post.diagnostics.get("weight_collapse"):
        out["warnings"].append(f"the SMC weights collapsed (smallest ESS {post.diagnostics.get('min_ess', 0):.2f} "
                               f"of {post.num_samples} particles): use more particles or steps")
    _misfit_checks(post, forward_model, torch.as_tensor(y), noise, out)
    if truth is not None:
        _truth_checks(post, torch.as_tensor(truth), out)
    return out


def diagnose(post: Posterior, problem: InverseProblem, *, prior=None, truth=None) -> dict:
    """:func:`check_posterior` for an :class:`InverseProblem` (truth: ``truth`` or the problem's, if any).

    Add the result to the posterior with ``post.diagnostics.update(diagnose(post, problem, prior=prior))``.
    """
    truth = problem.truth if truth is None else truth
    return check_posterior(post, problem.forward_model, problem.y, problem.noise,
                           prior_range=None if prior is None else prior_data_range(prior), truth=truth)
