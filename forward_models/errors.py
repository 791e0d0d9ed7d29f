"""The error type of invalid input to a forward model, a noise model or an inverse problem, and the two checks
of a numeric setting that raise it (:func:`integer_at_least`, :func:`number_in`).

The checks take the error type to raise as ``error=``, so that :mod:`samplers.validation` builds its
validators on them with its own :class:`~samplers.errors.SamplerConfigError`.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["ForwardModelError", "INT64_MAX", "integer_at_least", "number_in"]

#: the largest integer a setting may take: sizes, counts and seeds end up in int64 tensors and generators
INT64_MAX = 2**63 - 1

_CLOSED = ("both", "left", "right", "neither")


class ForwardModelError(ValueError):
    """Invalid input to :mod:`forward_models`: a bad shape, option value, measurement or configuration.

    A ``ValueError``, so ``except ValueError`` catches it too::

        from forward_models import Gaussian, ForwardModelError

        try:
            Gaussian(-1.0)
        except ForwardModelError as e:
            print(e)
    """


def _is_real(value) -> bool:
    """A real number that is not a boolean (``numbers.Real`` covers Python and NumPy ints and floats)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer_at_least(value, name: str, minimum: int = 1, *, error: type[Exception] = ForwardModelError) -> int:
    """``value`` as an ``int`` in ``[minimum, INT64_MAX]``, else ``error("<name> must be ..., got <value>")``.

    Accepts Python and NumPy integers and integer-valued floats (``4.0``); refuses booleans, strings, tensors,
    NaN, infinities, fractions (``2.5``) and values beyond ``INT64_MAX``.

    Example::

        from forward_models.errors import integer_at_least
        integer_at_least(4.0, "num_coils")       # 4
        integer_at_least(0, "num_coils")         # ForwardModelError: num_coils must be a positive integer, got 0
    """
    if _is_real(value) and (isinstance(value, numbers.Integral) or (math.isfinite(value) and value == int(value))) \
            and minimum <= int(value) <= INT64_MAX:
        return int(value)
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
    raise error(f"{name} must be {kind}, got {value!r}")


def number_in(value, name: str, low: float = -math.inf, high: float = math.inf, *, closed: str = "both",
              error: type[Exception] = ForwardModelError) -> float:
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high``, else ``error`` naming ``name``.

    ``closed`` says which ends belong to the interval, as in ``pandas.Interval``: ``"both"`` ``[low, high]``,
    ``"left"`` ``[low, high)``, ``"right"`` ``(low, high]``, ``"neither"`` ``(low, high)``. Booleans, strings,
    tensors, NaN, infinities and integers too large for a float are refused.

    Example::

        from forward_models.errors import number_in
        number_in(0.3, "beta", 0.0, 1.0, closed="right")   # 0.3
        number_in(-1, "gain", 0.0, closed="neither")   # ForwardModelError: gain must be a finite number > 0, got -1
    """
    if closed not in _CLOSED:
        raise ValueError(f"closed must be one of {_CLOSED}, got {closed!r}")
    low_in, high_in = closed in ("both", "left"), closed in ("both", "right")
    try:
        x = float(value) if _is_real(value) else math.nan
    except OverflowError:  # an int beyond the float range
        x = math.nan
    if math.isfinite(x) and (low <= x if low_in else low < x) and (x <= high if high_in else x < high):
        return x
    if math.isfinite(low) and math.isfinite(high):
        rule = f"lie in {'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
    elif math.isfinite(low):
        rule = f"be a finite number {'>=' if low_in else '>'} {low:g}"
    elif math.isfinite(high):
        rule = f"be a finite number {'<=' if high_in else '<'} {high:g}"
    else:
        rule = "be a finite number"
    raise error(f"{name} must {rule}, got {value!r}")
