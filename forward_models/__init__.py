"""Forward models ``y = F(x)``, noise models, and the inverse problem they define together."""

from forward_models.base import ForwardModel
from forward_models.errors import ForwardModelError
from forward_models.fanbeam import FanBeamCT
from forward_models.linear import Inpainting, MatrixOperator
from forward_models.names import close_match_hint, unknown_name_message
from forward_models.noise import Gaussian, NoiseModel, Poisson, noise_from_config
from forward_models.problem import InverseProblem
from forward_models.radial_mri import RadialMRI
from forward_models.registry import REGISTRY, example_operator, get_operator

__all__ = ["ForwardModel", "MatrixOperator", "Inpainting", "NoiseModel", "Gaussian", "Poisson",
           "noise_from_config", "InverseProblem", "REGISTRY", "get_operator", "example_operator", "ForwardModelError",
           "unknown_name_message", "close_match_hint", "FanBeamCT", "RadialMRI"]
