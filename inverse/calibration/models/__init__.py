"""Example calibration models, one file each, meant to be copied and adapted.

- ``heat``: 1-D heat equation, diffusivity and source amplitude (JAX; torch twin for the bridge benchmark)
- ``layered-earth``: reflection traveltimes of flat layers, velocities and thicknesses (JAX)
- ``navier-stokes``: 2-D Navier-Stokes viscosity and forcing amplitude (our torch solver via the bridge)
- ``mri-t2``: mono-exponential T2 relaxation ``S0 exp(-TE / T2)`` (JAX; torch twin)
"""

from __future__ import annotations

from forward_models.names import unknown_name_message
from inverse.calibration.model import CalibrationModel, JaxModel
from inverse.calibration.models.heat import HeatEquation1D, HeatEquation1DTorch
from inverse.calibration.models.layered_earth import (
    LayeredEarth,
    reflection_traveltimes,
)
from inverse.calibration.models.mri_t2 import T2Relaxation, T2RelaxationTorch
from inverse.calibration.models.navier_stokes import (
    NavierStokesCalibration,
    NavierStokesParameters,
)
from inverse.errors import UserError

__all__ = ["CalibrationModel", "JaxModel", "HeatEquation1D", "HeatEquation1DTorch", "LayeredEarth",
           "reflection_traveltimes", "T2Relaxation", "T2RelaxationTorch", "NavierStokesCalibration",
           "NavierStokesParameters", "MODELS", "get_model_class"]

#: command-line names of the example models
MODELS: dict[str, type] = {"heat": HeatEquation1D, "layered-earth": LayeredEarth,
                           "navier-stokes": NavierStokesCalibration, "mri-t2": T2Relaxation}


def get_model_class(name: str) -> type:
    """The model class of a command-line name, with a one-line 'did you mean' error for unknown names."""
    if name not in MODELS:
        raise UserError(unknown_name_message("calibration model", name, MODELS))
    return MODELS[name]
