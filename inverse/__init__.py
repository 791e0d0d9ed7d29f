"""What users touch: the inverse problem, the posterior, NetCDF I/O, figures and the ``inverse`` command."""

from forward_models.problem import InverseProblem
from samplers.posterior import Posterior, open_posterior, package_version

__version__ = package_version()

__all__ = ["InverseProblem", "Posterior", "open_posterior", "__version__"]
