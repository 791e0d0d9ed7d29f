"""Checks of a sampler's numeric settings: each returns the setting as an ``int`` / ``float`` or raises
:class:`~samplers.errors.SamplerConfigError` with one line naming the setting and the value.

Booleans, strings, NaN and infinities are refused everywhere; integer settings also refuse fractions
(``2.5``) and values beyond ``2**63 - 1``. Integer-valued floats (``100.0``) and NumPy scalars are
accepted. The checks are :func:`forward_models.errors.integer_at_least` and
:func:`forward_models.errors.number_in`, raising this package's error type.

Example::

    from samplers.validation import fraction_in, positive_float, positive_int

    class MySampler:
        def __init__(self, num_steps: int = 100, rho: float = 7.0, beta: float = 0.2):
            self.steps = positive_int(num_steps, "num_steps")
            self.rho = positive_float(rho, "rho")
            self.beta = fraction_in(beta, "beta", closed="right")      # (0, 1]

    MySampler(rho=-1.0)     # SamplerConfigError: rho must be a finite number > 0, got -1.0
"""

from __future__ import annotations

import math

from forward_models.errors import integer_at_least
from forward_models.errors import number_in as _number_in
from samplers.errors import SamplerConfigError

__all__ = ["positive_int", "non_negative_int", "int_at_least", "positive_float", "non_negative_float",
           "fraction_in"]


def int_at_least(value, name: str, minimum: int) -> int:
    """``value`` as an integer ``>= minimum``."""
    return integer_at_least(value, name, minimum, error=SamplerConfigError)


def positive_int(value, name: str) -> int:
    """``value`` as an integer ``>= 1`` (a number of steps, samples, chains, iterations)."""
    return integer_at_least(value, name, 1, error=SamplerConfigError)


def non_negative_int(value, name: str) -> int:
    """``value`` as an integer ``>= 0`` (warm-up iterations, a number of optional updates)."""
    return integer_at_least(value, name, 0, error=SamplerConfigError)


def positive_float(value, name: str) -> float:
    """``value`` as a finite float ``> 0`` (a schedule exponent, a gain, an inflation factor)."""
    return _number_in(value, name, 0.0, math.inf, closed="neither", error=SamplerConfigError)


def non_negative_float(value, name: str) -> float:
    """``value`` as a finite float ``>= 0`` (a guidance scale, where 0 switches the guidance off)."""
    return _number_in(value, name, 0.0, math.inf, closed="left", error=SamplerConfigError)


def fraction_in(value, name: str, low: float = 0.0, high: float = 1.0, *, closed: str = "both") -> float:
    """``value`` as a float between ``low`` and ``high``; ``closed`` names the ends that belong to the interval
    (``"both"`` ``[low, high]``, ``"left"``, ``"right"`` ``(low, high]``, ``"neither"``), as in ``pandas.Interval``."""
    return _number_in(value, name, low, high, closed=closed, error=SamplerConfigError)
