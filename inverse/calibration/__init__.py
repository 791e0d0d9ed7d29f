"""Parameter calibration: the posterior of a few physical parameters by NumPyro's MCMC, as ArviZ InferenceData.

- :func:`calibrate` -- NUTS, several (vectorised) chains, float64, divergences counted and warned about; or,
  for a model without gradients, ``kernel="ess"`` (NumPyro's ensemble slice sampling, same driver:
  :mod:`~inverse.calibration.gradient_free`);
- :mod:`~inverse.calibration.models` -- example models to copy: heat equation, layered earth,
  Navier-Stokes (torch, through the bridge), MRI T2 relaxation;
- :class:`TorchModel` / :class:`TorchPotential` -- the bridge for torch forward models (differentiable ones for NUTS);
- :func:`gibbs` -- semi-blind problems: a field sampler alternating with NUTS on the parameters;
- :func:`simulation_based_calibration` -- validation;
- :mod:`~inverse.calibration.io`, :mod:`~inverse.calibration.plots`, :mod:`inverse.commands.calibrate` --
  NetCDF files, trace / pair plots, the ``inverse calibrate`` command.

Names are imported on first use (PEP 562), so ``import inverse.commands.calibrate`` stays cheap for the
command line. Every module that touches JAX imports :mod:`inverse.calibration.model` first, which
switches JAX to float64 (``numpyro.enable_x64()``) before any array exists.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "calibrate": "core", "prepare": "core", "CalibrationSetup": "core", "DivergenceWarning": "core",
    "CalibrationModel": "model", "JaxModel": "model", "TorchModel": "bridge", "TorchPotential": "bridge",
    "MODELS": "models", "get_model_class": "models", "gibbs": "semiblind", "gaussian_field_step": "semiblind",
    "sampler_field_step": "semiblind", "linear_gaussian_log_likelihood": "semiblind",
    "KERNELS": "gradient_free", "simulation_based_calibration": "sbc", "SBCResult": "sbc",
    "summary": "diagnostics", "format_summary": "diagnostics", "divergences": "diagnostics",
    "read_data": "io", "write_data": "io", "read_inference_data": "io", "write_inference_data": "io",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"inverse.calibration.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'inverse.calibration' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
