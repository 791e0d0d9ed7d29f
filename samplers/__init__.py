"""Posterior samplers: configuration / state / step, one driver, cost counters."""

from samplers.base import Counters, Sampler, SamplerError, SamplerState, make_generator, run
from samplers.dps import DPS
from samplers.mcg import MCG
from samplers.posterior import Posterior, open_posterior
from samplers.schedules import karras_sigmas

__all__ = ["Counters", "Sampler", "SamplerError", "SamplerState", "make_generator", "run", "DPS", "MCG",
           "Posterior", "open_posterior", "karras_sigmas", "get_sampler", "SAMPLERS"]

#: command-line names of the samplers
SAMPLERS = {"dps": DPS, "mcg": MCG}


def get_sampler(name: str, **kwargs) -> Sampler:
    """Build a sampler by its command-line name, with a 'did you mean' error for unknown names."""
    if name not in SAMPLERS:
        import difflib
        close = difflib.get_close_matches(str(name), SAMPLERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown sampler {name!r}{hint} (known: {', '.join(sorted(SAMPLERS))})")
    return SAMPLERS[name](**kwargs)
