"""What users touch: the inverse problem, the posterior, NetCDF I/O, figures, calibration and the ``inverse`` command."""

from forward_models.problem import InverseProblem
from samplers.posterior import Posterior, open_posterior, package_version

__version__ = package_version()

__all__ = ["InverseProblem", "Posterior", "open_posterior", "calibrate", "reconstruct", "simulate",
           "open_measurements", "__version__"]


def __getattr__(name):
    # calibration pulls in JAX / NumPyro / ArviZ (~2 s): load it only when asked for
    if name == "calibrate":
        from inverse.calibration import calibrate

        return calibrate
    if name == "reconstruct":
        from inverse.reconstruct import reconstruct

        return reconstruct
    if name in ("simulate", "open_measurements"):
        from inverse import measurements

        return getattr(measurements, name)
    raise AttributeError(f"module 'inverse' has no attribute {name!r}")
