"""Posterior samplers: configuration / state / step, one driver, cost counters."""

from samplers.base import Counters, Sampler, SamplerError, State, make_generator, run
from samplers.daps import DAPS
from samplers.ddrm import DDRM
from samplers.diffpir import DiffPIR
from samplers.dps import DPS
from samplers.eki import EnsembleKalmanInversion
from samplers.enkg import EnsembleKalmanGuidance
from samplers.errors import SamplerConfigError
from samplers.exact_gaussian import ExactGaussian
from samplers.mcg import MCG
from samplers.pnp_dm import PnPDM
from samplers.posterior import Posterior, open_posterior
from samplers.registry import SAMPLERS, get_sampler
from samplers.schedules import karras_sigmas
from samplers.smc import ApproximationFreeEnsemble, MCGdiff, SMCSampler, TwistedDiffusionSampler

__all__ = ["Counters", "Sampler", "SamplerError", "State", "make_generator", "run", "DPS", "MCG",
           "Posterior", "open_posterior", "karras_sigmas", "get_sampler", "SAMPLERS"]

__all__ += ["EnsembleKalmanGuidance", "EnsembleKalmanInversion", "SamplerConfigError"]
__all__ += ["SMCSampler", "TwistedDiffusionSampler", "MCGdiff", "ApproximationFreeEnsemble"]
__all__ += ["ExactGaussian"]
__all__ += ["DAPS", "PnPDM", "DiffPIR", "DDRM"]
