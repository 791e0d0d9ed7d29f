"""What users touch: the inverse problem, the posterior, NetCDF I/O, figures, calibration and the ``inverse`` command.

Every name is imported on first use (PEP 562 ``__getattr__``), so ``inverse --help`` and the
argument errors of the command line answer without importing torch, JAX or xarray.
"""

__all__ = ["InverseProblem", "Posterior", "open_posterior", "calibrate", "reconstruct", "simulate",
           "open_measurements", "UserError", "__version__"]

#: name -> (module, attribute)
_LAZY = {
    "InverseProblem": ("forward_models.problem", "InverseProblem"),
    "Posterior": ("samplers.posterior", "Posterior"),
    "open_posterior": ("samplers.posterior", "open_posterior"),
    "calibrate": ("inverse.calibration", "calibrate"),     # JAX / NumPyro / ArviZ: a slow import
    "reconstruct": ("inverse.reconstruction", "reconstruct"),
    "simulate": ("inverse.measurements", "simulate"),
    "open_measurements": ("inverse.measurements", "open_measurements"),
    "UserError": ("inverse.errors", "UserError"),
}


def __getattr__(name):
    if name == "__version__":
        from samplers.posterior import package_version

        return package_version()
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'inverse' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
