"""What users touch: the inverse problem, the posterior, NetCDF I/O, figures, calibration and the ``inverse`` command."""

from forward_models.problem import InverseProblem
from samplers.posterior import Posterior, open_posterior, package_version

__version__ = package_version()

__all__ = ["InverseProblem", "Posterior", "open_posterior", "calibrate", "__version__"]


def __getattr__(name):
    # calibration pulls in JAX / NumPyro / ArviZ (~2 s): load it only when asked for
    if name == "calibrate":
        from inverse.calibration import calibrate

        return calibrate
    raise AttributeError(f"module 'inverse' has no attribute {name!r}")
