"""Affine map between a prior's model space and physical units: ``physical = offset + scale * x``.

Example: OpenFWI velocities 1500-4500 m/s <-> [-1, 1] is ``scale = 1500, offset = 3000``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from priors.errors import PriorError

__all__ = ["Normalisation"]


@dataclass(frozen=True)
class Normalisation:
    """``physical = offset + scale * model``; ``units`` names the physical unit."""

    scale: float = 1.0
    offset: float = 0.0
    units: str = ""

    def __post_init__(self):
        if not (math.isfinite(self.scale) and self.scale != 0 and math.isfinite(self.offset)):
            raise PriorError(f"normalisation needs a finite non-zero scale and finite offset, got {self.scale}, "
                             f"{self.offset}")

    def to_physical(self, x):
        """Model space -> physical units."""
        return self.offset + self.scale * x

    def from_physical(self, x):
        """Physical units -> model space."""
        return (x - self.offset) / self.scale

    def to_dict(self) -> dict:
        """JSON form (model card)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Normalisation:
        """From the model card's ``normalisation`` entry (identity when missing)."""
        d = d or {}
        return cls(float(d.get("scale", 1.0)), float(d.get("offset", 0.0)), str(d.get("units", "")))
