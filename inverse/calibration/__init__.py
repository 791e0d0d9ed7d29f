"""Parameter calibration: the posterior of a few physical parameters by NumPyro's NUTS, as ArviZ InferenceData.

- :func:`calibrate` -- NUTS, several (vectorised) chains, float64, divergences counted and warned about;
- :mod:`~inverse.calibration.models` -- example models to copy: heat equation, layered earth,
  Navier-Stokes (torch, through the bridge), MRI T2 relaxation;
- :class:`TorchModel` / :class:`TorchPotential` -- the bridge for differentiable torch forward models;
- :func:`gibbs` -- semi-blind problems: a field sampler alternating with NUTS on the parameters;
- :func:`random_walk_metropolis`, :func:`simulation_based_calibration` -- baseline and validation;
- :mod:`~inverse.calibration.io`, :mod:`~inverse.calibration.plots`, :mod:`~inverse.calibration.cli` --
  NetCDF files, trace / pair plots, the ``inverse calibrate`` command.

Importing this package switches JAX to float64 (``numpyro.enable_x64()``) before any array exists.
"""

import numpyro

numpyro.enable_x64()

from inverse.calibration.bridge import TorchModel, TorchPotential  # noqa: E402
from inverse.calibration.core import CalibrationSetup, DivergenceWarning, calibrate, prepare  # noqa: E402
from inverse.calibration.diagnostics import divergences, format_summary, summary  # noqa: E402
from inverse.calibration.gibbs import (gaussian_field_step, gibbs, linear_gaussian_log_likelihood,  # noqa: E402
                                       sampler_field_step)
from inverse.calibration.io import read_data, read_inference_data, write_data, write_inference_data  # noqa: E402
from inverse.calibration.model import CalibrationModel, JaxModel  # noqa: E402
from inverse.calibration.models import MODELS, get_model_class  # noqa: E402
from inverse.calibration.rwm import random_walk_metropolis  # noqa: E402
from inverse.calibration.sbc import SBCResult, simulation_based_calibration  # noqa: E402

__all__ = ["calibrate", "prepare", "CalibrationSetup", "DivergenceWarning", "CalibrationModel", "JaxModel",
           "TorchModel", "TorchPotential", "MODELS", "get_model_class", "gibbs", "gaussian_field_step",
           "sampler_field_step", "linear_gaussian_log_likelihood", "random_walk_metropolis",
           "simulation_based_calibration", "SBCResult", "summary", "format_summary", "divergences",
           "read_data", "write_data", "read_inference_data", "write_inference_data"]
