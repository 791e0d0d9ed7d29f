"""The samplers of the suite and their benchmark settings, built by name at a given step count.

Guidance scales follow the tuned defaults: :data:`inverse.problems.GMM_SETTINGS` on the Gaussian mixture and
the per-problem :data:`inverse.reconstruction.DEFAULT_SETTINGS` on images. EKI has no diffusion steps:
``steps`` sets its prior-sampling ODE steps and it makes ``eki_iterations`` Kalman updates.
"""

from __future__ import annotations

from inverse.problems import GMM_SETTINGS
from inverse.reconstruction import DEFAULT_SETTINGS
from samplers import get_sampler

__all__ = ["ALL_SAMPLERS", "build_sampler", "sampler_settings"]

#: the diffusion and ensemble samplers of ``samplers.SAMPLERS``, in table order
ALL_SAMPLERS = ("dps", "mcg", "tds", "mcgdiff", "afes", "enkg", "eki")


def sampler_settings(name: str, steps: int, problem: str | None = None, *, eki_iterations: int = 10) -> dict:
    """Constructor keyword arguments of sampler ``name`` at ``steps`` steps for ``problem`` (None: GMM)."""
    if name == "eki":
        return {"num_iterations": int(eki_iterations), "prior_steps": int(steps)}
    if problem is None:
        base = dict(GMM_SETTINGS.get(name, {}))
    else:
        table = DEFAULT_SETTINGS.get(name, {})
        base = dict(table.get(problem, table.get("*", {})))
    base["num_steps"] = int(steps)
    return base


def build_sampler(name: str, steps: int, problem: str | None = None, **kw):
    """The sampler ``name`` with :func:`sampler_settings`; returns ``(sampler, settings)``."""
    settings = sampler_settings(name, steps, problem, **kw)
    return get_sampler(name, **settings), settings
