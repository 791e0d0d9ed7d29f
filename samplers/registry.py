"""Command-line names of the samplers, with 'did you mean' errors for unknown names."""

from __future__ import annotations

import difflib

from samplers.base import Sampler
from samplers.dps import DPS
from samplers.eki import EnsembleKalmanInversion
from samplers.enkg import EnsembleKalmanGuidance
from samplers.afes import ApproximationFreeEnsemble
from samplers.mcg import MCG
from samplers.mcgdiff import MCGdiff
from samplers.tds import TwistedDiffusionSampler

__all__ = ["SAMPLERS", "get_sampler"]

#: command-line names of the samplers
SAMPLERS: dict[str, type] = {"dps": DPS, "mcg": MCG}
SAMPLERS.update({"enkg": EnsembleKalmanGuidance, "eki": EnsembleKalmanInversion})  # derivative-free (issue 5)
SAMPLERS.update({"tds": TwistedDiffusionSampler, "mcgdiff": MCGdiff, "afes": ApproximationFreeEnsemble})  # SMC (issue 5)


def get_sampler(name: str, **kwargs) -> Sampler:
    """Build a sampler by its command-line name, with a 'did you mean' error for unknown names."""
    if name not in SAMPLERS:
        close = difflib.get_close_matches(str(name), SAMPLERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown sampler {name!r}{hint} (known: {', '.join(sorted(SAMPLERS))})")
    return SAMPLERS[name](**kwargs)
