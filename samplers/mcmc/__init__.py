"""Function-space MCMC: pCN, delayed acceptance / MLDA, the hybrid two-level estimator, latent-space chains.

Kernels over :class:`Potential` levels and a Gaussian measure (:mod:`~samplers.mcmc.kernel`), run by the one
driver :func:`samplers.base.run` through :class:`MCMCSampler` (one state type, one checkpoint format). The
registered samplers :class:`PCNSampler`, :class:`DelayedAcceptanceSampler` and :class:`MLDASampler` build their
levels from an inverse problem and a prior (:mod:`~samplers.mcmc.levels`); :func:`sample_chains` runs a kernel
built by hand and returns a :class:`ChainResult` view of the posterior.
"""

from samplers.mcmc.chains import Chains, MCMCSampler, MeasurePrior, sample_chains
from samplers.mcmc.delayed_acceptance import MLDA, DelayedAcceptance
from samplers.mcmc.hybrid import HybridEstimate, hybrid_two_level
from samplers.mcmc.kernel import MCMCKernel, MCMCState, counted, metropolis
from samplers.mcmc.latent import LatentMap, latent_measure, latent_potential
from samplers.mcmc.levels import DelayedAcceptanceSampler, MLDASampler, PCNSampler, gaussian_measure, problem_levels
from samplers.mcmc.pcn import PCN, gaussian_reference, pcn_proposal, pilot_reference, reference_correction
from samplers.mcmc.potential import Potential, reshape_map
from samplers.mcmc.result import ChainResult, chain_diagnostics, merge_chains

__all__ = ["Chains", "MCMCSampler", "MeasurePrior", "sample_chains", "MLDA", "DelayedAcceptance", "HybridEstimate",
           "hybrid_two_level", "MCMCKernel", "MCMCState", "counted", "metropolis", "LatentMap", "latent_measure",
           "latent_potential", "DelayedAcceptanceSampler", "MLDASampler", "PCNSampler", "gaussian_measure",
           "problem_levels", "PCN", "gaussian_reference", "pcn_proposal", "pilot_reference", "reference_correction",
           "Potential", "reshape_map", "ChainResult", "chain_diagnostics", "merge_chains"]
