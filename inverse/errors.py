"""User errors: the exception types that mean "the input is wrong", as opposed to a bug.

Each package validates its own input and raises its own type, a subclass of ``ValueError`` (so
``except ValueError`` keeps working): :class:`UserError` here, :class:`forward_models.ForwardModelError`,
:class:`priors.PriorError` (and its :class:`priors.PriorLoadError`), :class:`samplers.SamplerConfigError`
and :class:`samplers.checkpoint.CheckpointError`. A :class:`samplers.SamplerError` (a sampler that cannot
continue, e.g. non-finite particles) also counts: it is fixed by changing the settings, not the code.
:data:`USER_ERRORS` lists them all; the ``inverse`` command prints one of them as one line and exits
with code 2, and lets any other exception through with its traceback.

Example::

    from inverse.errors import USER_ERRORS, UserError

    try:
        raise UserError("--steps must be at least 1, got 0")
    except USER_ERRORS as e:
        print(f"error: {e}")
"""

from __future__ import annotations

import sys

__all__ = ["UserError", "USER_ERRORS", "is_user_error"]  # noqa: F822 - USER_ERRORS is built by __getattr__


class UserError(ValueError):
    """Invalid input to the user layer (:mod:`inverse`): a bad argument, option value or file."""


#: (module, class) of every package's user-error type besides :class:`UserError`
_OTHERS = (("forward_models.errors", "ForwardModelError"), ("priors.errors", "PriorError"),
           ("priors.loading", "PriorLoadError"), ("samplers.errors", "SamplerConfigError"),
           ("samplers.errors", "SamplerError"), ("samplers.checkpoint", "CheckpointError"))


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is one of :data:`USER_ERRORS`, without importing a package that is not loaded yet
    (an exception of a type whose module was never imported cannot exist)."""
    types = [UserError] + [getattr(sys.modules[m], c, None) for m, c in _OTHERS if m in sys.modules]
    return isinstance(e, tuple(t for t in types if t is not None))


def __getattr__(name):
    """``USER_ERRORS`` is built on first use: the other packages' types import torch."""
    if name == "USER_ERRORS":
        import importlib

        return (UserError,) + tuple(getattr(importlib.import_module(m), c) for m, c in _OTHERS)
    raise AttributeError(f"module 'inverse.errors' has no attribute {name!r}")
