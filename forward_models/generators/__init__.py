"""Seeded generators of ground-truth fields (random fields, flow snapshots, phantoms, velocity models).

Each generator is a plain function ``(n, size, ..., seed) -> tensor (n, 1, size, size)``: the same
seed gives the same fields on every machine (CPU ``torch.Generator``).
"""

from forward_models.generators.grf import (
                                           gaussian_random_field,
                                           initial_vorticity,
                                           matern_spectrum,
                                           two_phase_permeability,
)
from forward_models.generators.vorticity import navier_stokes_snapshots

__all__ = ["gaussian_random_field", "matern_spectrum", "initial_vorticity", "two_phase_permeability",
           "navier_stokes_snapshots"]
from forward_models.generators.velocity import VELOCITY_FAMILIES, velocity_models  # noqa: E402

__all__ += ["velocity_models", "VELOCITY_FAMILIES"]
from forward_models.generators.phantoms import random_ellipses, shepp_logan  # noqa: E402

__all__ += ["random_ellipses", "shepp_logan"]
