"""Command-line names of the samplers, with 'did you mean' errors for unknown names."""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from forward_models import unknown_name_message
from samplers.base import Sampler
from samplers.daps import DAPS
from samplers.ddrm import DDRM
from samplers.diffpir import DiffPIR
from samplers.dps import DPS
from samplers.eki import EnsembleKalmanInversion
from samplers.enkg import EnsembleKalmanGuidance
from samplers.errors import SamplerConfigError
from samplers.mcg import MCG
from samplers.pnp_dm import PnPDM
from samplers.smc import ApproximationFreeEnsemble, MCGdiff, TwistedDiffusionSampler

__all__ = ["SAMPLERS", "get_sampler"]

#: command-line names of the samplers
SAMPLERS: dict[str, type] = {"dps": DPS, "mcg": MCG}
SAMPLERS.update({"enkg": EnsembleKalmanGuidance, "eki": EnsembleKalmanInversion})  # derivative-free
SAMPLERS.update({"tds": TwistedDiffusionSampler, "mcgdiff": MCGdiff, "afes": ApproximationFreeEnsemble})  # SMC
# splitting / annealing samplers and DDRM
SAMPLERS.update({"daps": DAPS, "pnp-dm": PnPDM, "diffpir": DiffPIR, "ddrm": DDRM})


def _check_setting_types(name: str, kwargs: dict) -> None:
    """Each setting must have the type of the constructor's default: an integer for an integer setting
    (``num_steps=2.5`` is refused, not truncated), a real number for a float, true/false for a flag."""
    params = inspect.signature(SAMPLERS[name].__init__).parameters
    for key, value in kwargs.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        if default is inspect.Parameter.empty or default is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, (bool, np.bool_))
        elif isinstance(default, int):
            ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
                and math.isfinite(value) and float(value).is_integer()
        elif isinstance(default, float):
            ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        else:
            ok = True  # strings, tuples: the constructor checks them
        if not ok:
            kind = type(default).__name__.replace("bool", "true/false").replace("int", "an integer") \
                .replace("float", "a number")
            raise SamplerConfigError(f"sampler setting {key!r} of {name!r} must be {kind}, got {value!r}")


def get_sampler(name: str, **kwargs) -> Sampler:
    """Build a sampler by its command-line name, with a 'did you mean' error for unknown names."""
    if name not in SAMPLERS:
        raise SamplerConfigError(unknown_name_message("sampler", name, SAMPLERS))
    _check_setting_types(name, kwargs)
    try:
        return SAMPLERS[name](**kwargs)
    except (TypeError, OverflowError) as e:  # unknown keyword, or a value such as 1e999 for an integer
        raise SamplerConfigError(f"bad settings for sampler {name!r}: {e}") from None


# function-space MCMC on a Gaussian or latent prior (samplers.mcmc.levels)
from samplers.mcmc import DelayedAcceptanceSampler, MLDASampler, PCNSampler  # noqa: E402

SAMPLERS.update({"pcn": PCNSampler, "da": DelayedAcceptanceSampler, "mlda": MLDASampler})

# exact posterior of a linear model under a Gaussian prior (perturbation-optimisation with CG)
from samplers.exact_gaussian import ExactGaussian  # noqa: E402

SAMPLERS["exact-gaussian"] = ExactGaussian
