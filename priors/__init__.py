"""Priors: every prior is a sigma-space denoiser ``D(x, sigma) ~= E[x0 | x0 + sigma * eps = x]``."""

from priors.base import Prior
from priors.deepinv_denoiser import DeepInvDenoiserPrior
from priors.edm import EDMPrior
from priors.errors import PriorError
from priors.flow import FlowMatchingPrior
from priors.function_space import DenseGaussian, GaussianMeasure, MaternField, StandardGaussian
from priors.gaussian import GaussianPrior
from priors.gaussian_field import GaussianFieldPrior
from priors.gaussian_mixture import GaussianMixture, GaussianMixturePrior
from priors.loading import PriorLoadError, load_prior, save_prior, shipped_priors
from priors.normalisation import Normalisation
from priors.ode import latent_to_sample, sample_to_latent
from priors.vp import VPDiffusionPrior

__all__ = ["Prior", "GaussianPrior", "GaussianMixture", "GaussianMixturePrior", "GaussianFieldPrior", "EDMPrior",
           "VPDiffusionPrior", "FlowMatchingPrior", "DeepInvDenoiserPrior", "Normalisation", "load_prior", "save_prior",
           "shipped_priors", "PriorError", "PriorLoadError", "latent_to_sample", "sample_to_latent",
           "GaussianMeasure", "StandardGaussian", "DenseGaussian", "MaternField"]
