"""Sequential Monte Carlo with diffusion priors: one composed step, and one module per method.

- :mod:`~samplers.smc.resampling`: systematic resampling, ESS, evidence increments;
- :mod:`~samplers.smc.base`: the SMC state and the step composed of weight, resample, move and MCMC functions;
- :mod:`~samplers.smc.linear_gaussian` and :mod:`~samplers.smc.linear_twist`: the operator's singular basis
  and fully adapted SMC along a path of Gaussian twists;
- :mod:`~samplers.smc.tds` (Wu et al. 2023), :mod:`~samplers.smc.mcgdiff` (Cardoso et al. 2024),
  :mod:`~samplers.smc.afes` (Chen et al. 2025).
"""

from samplers.smc.afes import ApproximationFreeEnsemble
from samplers.smc.base import (
    REVERSE_VARIANCES,
    Move,
    SMCKernel,
    SMCSampler,
    SMCState,
    WeightCollapseWarning,
    smc_step,
)
from samplers.smc.linear_gaussian import LinearGaussian
from samplers.smc.linear_twist import LinearTwistSMC, TwistPath
from samplers.smc.mcgdiff import MCGdiff
from samplers.smc.resampling import effective_sample_size, log_mean_weight, should_resample, systematic_resample
from samplers.smc.tds import TwistedDiffusionSampler

__all__ = ["SMCSampler", "SMCState", "SMCKernel", "smc_step", "Move", "WeightCollapseWarning", "REVERSE_VARIANCES",
           "systematic_resample", "effective_sample_size", "should_resample", "log_mean_weight",
           "LinearGaussian", "LinearTwistSMC", "TwistPath",
           "TwistedDiffusionSampler", "MCGdiff", "ApproximationFreeEnsemble"]
