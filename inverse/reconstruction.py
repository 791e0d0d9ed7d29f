"""Reconstruction (``inverse reconstruct``): posterior samples for a measurement file, with a closing summary.

``reconstruct(measurements, prior, sampler, ...)`` rebuilds the forward model from the file
(:func:`inverse.measurements.open_measurements`), loads the prior (shipped name, directory, or a
:class:`priors.Prior`; default: the problem's shipped prior), runs the sampler with per-problem
default settings (:data:`DEFAULT_SETTINGS`, overridable), and returns a :class:`samplers.Posterior`
whose ``config`` holds the measurement recipe and whose ``extras`` hold the direct reconstruction
(FBP / zero-filled / adjoint) for figures. :func:`summarize` gives the numbers printed at the end:
time, NFE, forward evaluations, normalised data misfit of the posterior mean
``||y - F(mean)|| / (sigma sqrt(m))`` with its 1%-99% range under the noise model, the per-sample
misfits and the ensemble's data-space coverage, and against the truth when known: relative L2, PSNR
and SSIM of the posterior mean, and the coverage of the pixel-wise 90% interval; then one warning per
failed check of :mod:`inverse.diagnostics` (the prior does not fit the data, a collapsed ensemble, a
diverged sampler). The posterior's dimensions carry coordinates in physical units
(:mod:`inverse.coordinates`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from forward_models import InverseProblem
from inverse.errors import UserError
from inverse.measurements import Measurements, open_measurements
from inverse.metrics import psnr, relative_l2, ssim
from inverse.problems import get_problem, measurement_view
from priors.base import Prior
from samplers import Posterior, get_sampler
from samplers.base import resolve_device

__all__ = ["reconstruct", "summarize", "DEFAULT_SETTINGS", "DEFAULT_SAMPLER", "format_summary", "STEPS_SETTING",
           "steps_setting", "sampler_for", "check_num_samples", "UNIT_SCALED_SETTINGS", "reference_scale",
           "rescale_guidance", "FALLBACK_PRIOR", "fallback_prior"]

#: sampler settings per (sampler, problem); DPS's guidance scale was chosen by posterior-mean relative
#: L2 on seeds 0-1 of each problem with its shipped prior at 50 steps (``scripts/tune_reconstruct.py``,
#: table in docs/benchmarks/tuning.md). DPS guides with the gradient of the unwhitened residual norm, so the best
#: scale follows the measurement's units: CT sinograms are large numbers, Darcy pressures tiny.
#: MCG's gradient step ``alpha`` (0.3 from the mixture benchmark) was scanned over {0.3, 1, 3, 10, 30} on the
#: held-out phantoms 10000-10001 at 100 steps, x4 and x8 (``scripts/tune_reconstruct.py --sampler mcg --param
#: alpha --first-seed 10000``, table in docs/benchmarks/tuning.md): 10 on single- and multi-coil MRI (lowest relative
#: L2 over both accelerations; 30 is worse), 0.3 kept on CT (1 diverged on one phantom, 10 on both).
#: EnKG's guidance scale on navier-stokes (0.75, not InverseBench's 2, which collapses ensembles of a few
#: dozen members) comes from a scan on one instance (docs/benchmarks/studies.md, Navier-Stokes).
#: ``"*"`` applies to problems without an entry.
DEFAULT_SETTINGS = {
    "dps": {"*": {"num_steps": 50, "zeta": 1.0}, "ct": {"num_steps": 50, "zeta": 0.3},
            "mri": {"num_steps": 50, "zeta": 10.0}, "mri-multicoil": {"num_steps": 50, "zeta": 10.0},
            "darcy": {"num_steps": 50, "zeta": 300.0}, "navier-stokes": {"num_steps": 50, "zeta": 0.3},
            "fwi": {"num_steps": 50, "zeta": 0.3}},
    "mcg": {"*": {"num_steps": 100, "alpha": 0.3}, "mri": {"num_steps": 100, "alpha": 10.0},
            "mri-multicoil": {"num_steps": 100, "alpha": 10.0}},
    "enkg": {"*": {"num_steps": 30}, "navier-stokes": {"num_steps": 30, "guidance_scale": 0.75}},
    "tds": {"*": {"num_steps": 50}},
    "mcgdiff": {"*": {"num_steps": 50}},
    "afes": {"*": {"num_steps": 50}},
}


#: the sampler setting that ``--steps`` / ``steps=`` sets, where it is not ``num_steps``: EKI's natural step
#: count is its number of Kalman iterations (its prior-sampling ODE steps are ``prior_steps``)
STEPS_SETTING = {"eki": "num_iterations"}


def steps_setting(sampler: str) -> str:
    """The name of ``sampler``'s setting that ``--steps`` sets: ``num_steps``, or :data:`STEPS_SETTING`'s entry.

    A sampler with neither is refused with a message naming its integer settings.
    """
    import inspect

    from samplers import SAMPLERS

    name = STEPS_SETTING.get(sampler, "num_steps")
    if sampler not in SAMPLERS:
        return name  # get_sampler names the unknown sampler
    params = inspect.signature(SAMPLERS[sampler].__init__).parameters
    if name not in params:
        ints = [k for k, v in params.items() if isinstance(v.default, int) and not isinstance(v.default, bool)]
        raise UserError(f"sampler {sampler!r} has no step count for --steps; set one of its settings with "
                        f"-s KEY=VALUE ({', '.join(ints) or 'none'})")
    return name


def _settings(sampler: str, problem: str, steps: int | None, options: dict | None) -> dict:
    table = DEFAULT_SETTINGS.get(sampler, {})
    s = dict(table.get(problem, table.get("*", {})))
    if steps is not None:
        key = steps_setting(sampler)
        if key in (options or {}):
            raise UserError(f"--steps and -s {key}=... both set {sampler}'s {key}: give one of them")
        s[key] = steps
    s.update(options or {})
    return s


def sampler_for(sampler: str, problem: str, steps: int | None = None, options: dict | None = None):
    """The sampler ``sampler`` with its default settings for ``problem`` (``"*"``: any problem), ``steps``
    (its natural step count, :func:`steps_setting`) and ``options``; its schedule exponent is checked here
    too, so that every setting is refused before a prior is loaded."""
    from samplers.schedules import check_rho

    smp = get_sampler(sampler, **_settings(sampler, problem, steps, options))
    if getattr(smp, "rho", None) is not None:
        check_rho(smp.rho)
    return smp


#: bytes per sample and per element of ``x`` and ``y`` that a sampler's working arrays take (particles,
#: denoised estimates, gradients, float64 copies): the estimate behind the ``num_samples`` bound
_BYTES_PER_ELEMENT = 256


def check_num_samples(num_samples, forward_model) -> int:
    """``num_samples`` as an integer >= 1 whose working arrays fit in half of this machine's memory."""
    import numbers

    from inverse.validation import format_bytes, memory_limit_bytes

    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or int(num_samples) < 1:
        raise UserError(f"--num-samples must be an integer >= 1, got {num_samples!r}")
    n = int(num_samples)
    per = _BYTES_PER_ELEMENT * (math.prod(forward_model.input_shape) + math.prod(forward_model.output_shape))
    need, limit = float(n) * per, memory_limit_bytes()
    if need > limit:
        raise UserError(f"--num-samples {n} needs about {format_bytes(need)} of memory for this problem, more than "
                        f"half of this machine's ({format_bytes(limit)} allowed): at most {max(1, limit // per)}")
    return n


def _gaussian_prior(name: str, m: Measurements):
    """``gaussian`` / ``gaussian:STD``: the white Gaussian baseline prior ``N(m, STD^2 I)`` in physical units.

    ``m`` is the middle of the problem's physical range for positive fields (velocity 3000 m/s,
    permeability 7.5), else 0. Without STD, the scale is the RMS of the direct reconstruction
    (problems that have one), else a quarter of the physical range.
    It knows nothing about the field's structure: a reference point for the learned priors, and the
    only built-in choice for problems without a shipped prior (seismic-interp).
    """
    from inverse.measurements import TRUTH_RANGES
    from priors import GaussianPrior

    shape = tuple(m.forward_model.input_shape)
    lo, hi = TRUTH_RANGES.get(m.problem, (-1.0, 1.0))
    mean = 0.5 * (lo + hi) if lo >= 0 else 0.0  # positive fields (velocity, permeability) centre on their range
    if ":" in name:
        try:
            std = float(name.split(":", 1)[1])
        except ValueError:
            raise UserError(f"--prior {name!r}: the standard deviation after 'gaussian:' must be a number") from None
        if not std > 0:
            raise UserError(f"--prior {name!r}: the standard deviation must be positive")
    else:
        view = measurement_view(m.problem, m.forward_model, m.y[None])
        std = float(view.double().square().mean().sqrt()) if view is not None else 0.25 * (hi - lo)
        std = std if std > 0 else 1.0
    return GaussianPrior(torch.full(shape, mean), std=std, dtype=torch.float32)


def _load_prior(prior, spec, device, m: Measurements):
    from priors import load_prior

    if isinstance(prior, Prior):
        return prior
    name = prior or spec.prior
    if name is None:
        raise UserError(f"problem {spec.name!r} has no shipped prior: pass --prior NAME, a prior directory, "
                        "or --prior gaussian (a white Gaussian baseline)")
    if str(name) == "gaussian" or str(name).startswith("gaussian:"):
        return _gaussian_prior(str(name), m).to(device or "cpu")
    return load_prior(name, device=device)


#: the gradient-step setting of each sampler whose best value follows the prior's physical units: DPS and MCG step
#: along ``grad_x ||y - F(offset + scale x)||`` in the prior's model space, which grows with ``scale``
UNIT_SCALED_SETTINGS = {"dps": "zeta", "mcg": "alpha"}


def reference_scale(problem: str) -> float | None:
    """The normalisation scale of ``problem``'s shipped prior (the units :data:`DEFAULT_SETTINGS` were tuned in),
    read from its model card; None when the problem has no shipped prior."""
    from priors.loading import shipped_priors

    spec = get_problem(problem)
    card = shipped_priors().get(spec.prior or "", {})
    norm = card.get("normalisation") if isinstance(card, dict) else None
    scale = norm.get("scale") if isinstance(norm, dict) else None
    return float(scale) if isinstance(scale, int | float) and scale != 0 else None


def rescale_guidance(smp, sampler: str, problem: str, prior, options: dict | None) -> float:
    """Rescale the default guidance step of ``smp`` to ``prior``'s units, in place; returns the factor applied.

    The defaults of :data:`DEFAULT_SETTINGS` were tuned with each problem's shipped prior, whose normalisation is
    ``physical = offset + s_ref * model``. For a linear forward model the DPS / MCG step
    ``zeta grad_x ||y - F(offset + s x)||`` equals ``zeta s F^T r / ||r||``: a prior with scale ``s`` (data in
    other units, e.g. grey levels 0-255 instead of 0-1) needs ``zeta s_ref / s`` for the same trajectory. A
    setting given explicitly (``options``) is never changed; priors without a normalisation keep the default.
    """
    key = UNIT_SCALED_SETTINGS.get(sampler)
    norm = getattr(prior, "normalisation", None)
    if key is None or key in (options or {}) or norm is None:
        return 1.0
    ref = reference_scale(problem)
    if ref is None or abs(norm.scale) == abs(ref):
        return 1.0
    factor = abs(ref / norm.scale)
    setattr(smp, key, getattr(smp, key) * factor)
    if key != "zeta" and hasattr(smp, "zeta"):  # MCG keeps its step in DPS's attribute too
        smp.zeta = smp.zeta * factor
    return factor


#: the sampler used when none is named: DPS, except where another one measured better
DEFAULT_SAMPLER = {"seismic-interp": "mcg"}


def _clamped(fm):
    """The wave model behind a velocity clamp: a sampler's intermediate (or mean) velocities may leave the
    solver's range; every other model is returned unchanged."""
    if type(fm).__name__ == "AcousticFWI":
        from forward_models.seismic import ClampedVelocity

        return ClampedVelocity(fm)
    return fm


def reconstruct(measurements, prior=None, sampler: str | None = None, *, num_samples: int = 8, seed: int = 0,
                steps: int | None = None, sampler_options: dict | None = None, device=None,
                progress: bool = False, checkpoint=None, checkpoint_every: int = 10,
                resume: bool = False, fallback: bool = True) -> Posterior:
    """Sample the posterior of a measurement (a :class:`Measurements` or a file written by ``inverse simulate``).

    ``checkpoint`` / ``checkpoint_every`` / ``resume``: save the sampler state every K steps and
    continue an interrupted run bit for bit (:func:`samplers.run`).

    ``fallback``: when no prior is named, the problem's shipped prior has a generic fallback
    (:data:`FALLBACK_PRIOR`), and the posterior does not explain the data (``diagnostics["prior_mismatch"]``,
    :mod:`inverse.diagnostics`), the same sampler runs again with the fallback prior in the shipped prior's
    units, and the posterior whose normalised misfit is nearer 1 (``|log misfit|``) is returned; both misfits
    are recorded in ``config["prior_fallback"]`` and a warning says which prior produced the result. Not
    with a checkpoint (one run, one state).

    Example::

        import inverse
        from inverse.measurements import simulate
        simulate("ct", seed=0).to_netcdf("y.nc")
        post = inverse.reconstruct("y.nc", prior="phantoms-64", sampler="dps", num_samples=4)
        post.mean(), post.std()
    """
    from inverse.validation import check_device, check_seed

    m = measurements if isinstance(measurements, Measurements) else open_measurements(measurements)
    spec = get_problem(m.problem)
    num_samples = check_num_samples(num_samples, m.forward_model)
    seed = check_seed(seed, "seed")
    if device is not None:
        check_device(device, "device")
        resolve_device(device)  # an unknown device fails here, before the prior is loaded
    sampler = sampler or DEFAULT_SAMPLER.get(m.problem, "dps")
    smp = sampler_for(sampler, m.problem, steps, sampler_options)
    pr = _load_prior(prior, spec, device, m)
    post = _reconstruct_with(m, spec, pr, smp, sampler, sampler_options, num_samples, seed, device, progress,
                             checkpoint, checkpoint_every, resume)
    generic = FALLBACK_PRIOR.get(spec.prior or "")
    if not (fallback and prior is None and generic and checkpoint is None and post.diagnostics.get("prior_mismatch")):
        return post
    alt = _reconstruct_with(m, spec, fallback_prior(spec.prior, device), sampler_for(sampler, m.problem, steps,
                            sampler_options), sampler, sampler_options, num_samples, seed, device, progress,
                            None, checkpoint_every, False)
    a, b = post.diagnostics.get("misfit", math.nan), alt.diagnostics.get("misfit", math.nan)
    use_alt = math.isfinite(b) and b > 0 and not (math.isfinite(a) and a > 0 and abs(math.log(a)) <= abs(math.log(b)))
    chosen = alt if use_alt else post
    chosen.config["prior_fallback"] = {"default": spec.prior, "fallback": generic, "misfit_default": a,
                                       "misfit_fallback": b, "used": generic if use_alt else spec.prior}
    if use_alt:
        chosen.diagnostics["warnings"].insert(0, f"{spec.prior} did not explain the data (misfit {a:.2f}): this "
                                              f"posterior is from the generic prior {generic} (misfit {b:.2f}), "
                                              "tried automatically; name a prior with --prior to choose")
    else:
        chosen.diagnostics["warnings"].append(f"the generic prior {generic}, tried automatically, explained the "
                                              f"data no better (misfit {b:.2f})")
    return chosen


#: a generic prior for each shipped prior whose training data are narrow: tried by :func:`reconstruct` when the
#: shipped prior does not explain the data (``fallback=True``), in the shipped prior's units
FALLBACK_PRIOR = {"phantoms-64": "real-patches-64"}


def fallback_prior(shipped: str, device=None):
    """:data:`FALLBACK_PRIOR`'s prior for ``shipped``, mapped onto ``shipped``'s data range (its card's
    normalisation), so that it reads measurements in the same units."""
    from priors import load_prior
    from priors.loading import shipped_priors

    norm = shipped_priors()[shipped]["normalisation"]
    scale, offset = abs(float(norm["scale"])), float(norm["offset"])
    return load_prior(FALLBACK_PRIOR[shipped], device=device, data_range=(offset - scale, offset + scale),
                      units=norm.get("units"))


def _reconstruct_with(m, spec, pr, smp, sampler, sampler_options, num_samples, seed, device, progress, checkpoint,
                      checkpoint_every, resume) -> Posterior:
    """:func:`reconstruct` with its prior and sampler chosen."""
    guidance_factor = rescale_guidance(smp, sampler, m.problem, pr, sampler_options)
    if getattr(smp, "rho", None) is not None and getattr(pr, "sigma_max", None) is not None:
        from samplers.schedules import karras_sigmas

        karras_sigmas(2, pr.sigma_min, pr.sigma_max, smp.rho)  # a schedule this prior's noise range cannot take
    fm = m.fresh_forward_model()   # a fresh copy (recipe and recorded arrays), run in the prior's precision
    if tuple(pr.shape) != tuple(fm.input_shape):
        raise UserError(f"the prior's samples have shape {tuple(pr.shape)} but problem {m.problem!r} needs "
                        f"{tuple(fm.input_shape)}: choose a prior trained at that size")
    fm = fm.to(pr.dtype)
    fm = _clamped(fm)
    InverseProblem(fm, m.y, m.noise)  # refuses a complex or non-finite y before the cast below could drop parts
    problem = InverseProblem(fm, m.y.to(pr.dtype), m.noise, truth=None)
    post = smp.sample(problem, pr, int(num_samples), seed=int(seed), device=device, progress=progress,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    post.samples = post.samples.cpu()
    post.truth = None if m.truth is None else m.truth.to(post.samples.dtype)
    post.units = spec.x_units
    post.dims = spec.x_dims
    from inverse.coordinates import dimension_coords  # physical coordinates of every image axis (CF units)

    axes = dimension_coords(m.forward_model, spec.x_dims, tuple(post.samples.shape[1:]))
    post.coords = {k: v for k, (v, _) in axes.items()}
    post.coord_attrs = {k: a for k, (_, a) in axes.items()}
    view = measurement_view(m.problem, m.forward_model, m.y[None])
    if view is not None:
        post.extras["measurement_view"] = view[0].to(post.samples.dtype)
    elif m.y.ndim >= 2 and not m.y.is_complex():  # no direct reconstruction: the figure shows y itself
        post.extras["measurement_image"] = m.y.detach().cpu().to(post.samples.dtype)
    if guidance_factor != 1.0:
        post.config["guidance_rescaled"] = {"setting": UNIT_SCALED_SETTINGS[sampler], "factor": guidance_factor}
    post.config["measurements"] = {"problem": m.problem, "options": m.options, "seed": m.seed,
                                   "view": spec.view_name, "y_units": spec.y_units}
    post.diagnostics.update(summarize(post, m, pr))
    return post


def _prior_range(post: Posterior, prior=None) -> tuple[float, float] | None:
    """The prior's data range in physical units (:func:`inverse.diagnostics.prior_data_range`), or from the
    normalisation the posterior's configuration records (network priors); None when unknown."""
    from inverse.diagnostics import prior_data_range

    if prior is not None:
        return prior_data_range(prior)
    norm = post.config.get("prior", {}).get("normalisation") if isinstance(post.config.get("prior"), dict) else None
    if isinstance(norm, dict):
        try:
            a, b = (float(norm.get("offset", 0.0)) + s * float(norm.get("scale", 1.0)) for s in (-1.0, 1.0))
            if math.isfinite(a) and math.isfinite(b) and a != b:
                return min(a, b), max(a, b)
        except (TypeError, ValueError):
            pass
    return None


def summarize(post: Posterior, m: Measurements, prior=None) -> dict:
    """Closing numbers of a reconstruction (module docstring): misfit, and errors when the truth is known.

    Also the checks of :func:`inverse.diagnostics.check_posterior`: the misfit's expected range, the
    per-sample misfits, the data-space coverage of the ensemble, the samples' range against the prior's,
    and ``warnings`` (prior mismatch, collapsed ensemble, diverged sampler). Raises
    :class:`samplers.SamplerError` when the samples are certainly meaningless (non-finite, or far outside
    the prior's range). ``prior``: the prior that produced the posterior (its data range), if at hand.
    """
    from inverse.diagnostics import check_posterior

    truth = m.truth
    out = check_posterior(post, _clamped(m.forward_model), m.y, m.noise, prior_range=_prior_range(post, prior),
                          truth=truth)
    if truth is not None and bool(torch.isfinite(truth).all()):
        mean = post.mean().to(torch.float64)
        t = truth.to(torch.float64)
        out["relative_l2"] = relative_l2(mean, t)
        out["psnr"] = psnr(mean, t)
        if t.ndim == 3 and t.shape[0] == 1 and min(t.shape[-2:]) >= 11:
            out["ssim"] = ssim(mean, t)
        view = post.extras.get("measurement_view")
        if view is not None:
            out["view_relative_l2"] = relative_l2(view.to(torch.float64), t)
            out["view_psnr"] = psnr(view.to(torch.float64), t)
    return out


def format_summary(post: Posterior) -> str:
    """The closing summary printed by ``inverse reconstruct`` (one line per topic, then one line per warning)."""
    d = post.diagnostics
    n = d.get("num_samples", post.num_samples)
    num = lambda v: f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"  # noqa: E731 - 1.6e30, not 31 digits
    misfit = num(d.get("misfit", float("nan")))
    exp = d.get("misfit_expected")
    expected = (f"expected {exp[0]:.2f}-{exp[1]:.2f} under the noise model (1%-99%); the mean may sit below"
                if isinstance(exp, list) and len(exp) == 2 else "about 1 when it fits to the noise level")
    lines = [f"{post.config.get('sampler', {}).get('class', '?')}: {n} samples in {d.get('wall_time_s', 0):.1f} s; "
             f"{d.get('nfe', 0)} network evaluations, {d.get('forward_evals', 0)} forward-model evaluations, "
             f"{d.get('grad_evals', 0)} gradients",
             f"data misfit of the posterior mean ||y - F(mean)|| / (sigma sqrt(m)) = {misfit} ({expected})"]
    per = d.get("misfit_samples")
    if isinstance(per, list) and len(per) == 3:
        s = f"misfit per sample: median {num(per[1])} (5%-95%: {num(per[0])}-{num(per[2])})"
        if "data_coverage_90" in d:
            s += (f"; {100 * d['data_coverage_90']:.1f}% of the measurements lie in the ensemble's 90% predictive "
                  "intervals")
        lines.append(s)
    if "relative_l2" in d:
        s = f"posterior mean vs truth: relative L2 {d['relative_l2']:.4f}, PSNR {d['psnr']:.2f} dB"
        if "ssim" in d:
            s += f", SSIM {d['ssim']:.4f}"
        if "coverage_90" in d:
            s += f"; 90% pixel intervals cover {100 * d['coverage_90']:.1f}% of the truth"
            if "coverage_90_nominal" in d:
                s += f" (about {100 * d['coverage_90_nominal']:.0f}% expected)"
        lines.append(s)
        if "view_relative_l2" in d:
            view = post.config.get("measurements", {}).get("view") or "direct reconstruction"
            lines.append(f"{view} vs truth: relative L2 {d['view_relative_l2']:.4f}, PSNR {d['view_psnr']:.2f} dB")
    lines += [f"warning: {w}" for w in d.get("warnings", []) if isinstance(w, str)]
    return "\n".join(lines)


def _default_out(path: Path) -> Path:  # pragma: no cover - convenience
    return path.with_name(path.stem + "-posterior.nc")
