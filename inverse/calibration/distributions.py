"""Priors as NumPyro distributions: checks, one-line descriptions, and the command line's ``name:args`` form.

Bounded parameters need nothing special: NUTS runs in the unconstrained space of
``numpyro.distributions.transforms.biject_to(prior.support)`` (log for positive parameters,
scaled logit for intervals) and adds the log-Jacobian, so every draw lies in the prior's support
(Stan Development Team, "Stan Reference Manual", ch. "Constraint transforms"; Phan et al. 2019).
"""

from __future__ import annotations

import math

import numpyro.distributions as dist

import inverse.calibration.model  # noqa: F401  (switches JAX to float64 before any array)
from forward_models.names import close_match_hint
from inverse.errors import UserError

__all__ = ["PRIOR_FAMILIES", "parse_distribution", "describe_distribution", "check_prior", "check_noise_prior"]

#: command-line prior families: name -> (NumPyro class, argument names)
PRIOR_FAMILIES: dict[str, tuple[type, tuple[str, ...]]] = {
    "normal": (dist.Normal, ("loc", "scale")),
    "lognormal": (dist.LogNormal, ("loc", "scale")),
    "uniform": (dist.Uniform, ("low", "high")),
    "halfnormal": (dist.HalfNormal, ("scale",)),
    "halfcauchy": (dist.HalfCauchy, ("scale",)),
    "exponential": (dist.Exponential, ("rate",)),
    "gamma": (dist.Gamma, ("concentration", "rate")),
}


def parse_distribution(spec: str) -> dist.Distribution:
    """A distribution from ``family:a,b`` (e.g. ``lognormal:-9.2,1``, ``uniform:0,1``, ``halfnormal:0.1``).

    Families: :data:`PRIOR_FAMILIES`. Scales, rates and bounds are checked here, so a bad value fails
    with a one-line ``ValueError`` naming the spec.
    """
    family, _, args = str(spec).partition(":")
    family = family.strip().lower()
    if family not in PRIOR_FAMILIES:
        hint = close_match_hint(family, PRIOR_FAMILIES)
        raise UserError(f"unknown prior family {family!r} in {spec!r}{hint} (known: {', '.join(PRIOR_FAMILIES)})")
    cls, names = PRIOR_FAMILIES[family]
    parts = [a for a in args.split(",") if a.strip()] if args else []
    if len(parts) != len(names):
        raise UserError(f"prior {spec!r}: {family} takes {len(names)} number(s) ({', '.join(names)}), "
                        f"e.g. {family}:{','.join(['1'] * len(names))}")
    try:
        values = [float(a) for a in parts]
    except ValueError:
        raise UserError(f"prior {spec!r}: the arguments must be numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"prior {spec!r}: the arguments must be finite")
    kw = dict(zip(names, values, strict=False))
    for k in ("scale", "rate", "concentration"):
        if k in kw and kw[k] <= 0:
            raise UserError(f"prior {spec!r}: {k} must be positive, got {kw[k]}")
    if family == "uniform" and not kw["low"] < kw["high"]:
        raise UserError(f"prior {spec!r}: uniform needs low < high")
    return cls(**kw)


def describe_distribution(d: dist.Distribution) -> str:
    """One line such as ``LogNormal(loc=0, scale=0.5)`` (for file attributes and summaries)."""
    args = []
    for name in getattr(d, "arg_constraints", {}):
        v = getattr(d, name, None)
        try:
            args.append(f"{name}={float(v):.6g}")
        except (TypeError, ValueError):
            continue
    return f"{type(d).__name__}({', '.join(args)})"


def check_prior(name: str, d) -> dist.Distribution:
    """``d`` itself if it is a continuous NumPyro distribution, else a one-line error naming ``name``."""
    if not isinstance(d, dist.Distribution):
        raise TypeError(f"the prior of {name!r} must be a numpyro.distributions.Distribution, got {type(d).__name__}")
    if d.support.is_discrete:
        raise UserError(f"the prior of {name!r} is discrete ({type(d).__name__}); NUTS needs continuous parameters")
    return d


def check_noise_prior(d) -> dist.Distribution:
    """``d`` if it is a continuous prior on positive values (a noise standard deviation)."""
    d = check_prior("sigma", d)
    low = getattr(d.support, "lower_bound", None)
    try:
        ok = low is not None and float(low) >= 0.0
    except TypeError:
        ok = False
    if not ok:
        raise UserError(f"the prior of the noise level sigma must live on positive values (e.g. HalfNormal, "
                        f"LogNormal), got {type(d).__name__} with support {d.support}")
    return d
