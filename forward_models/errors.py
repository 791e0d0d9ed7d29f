"""The error type of invalid input to a forward model, a noise model or an inverse problem."""

__all__ = ["ForwardModelError"]


class ForwardModelError(ValueError):
    """Invalid input to :mod:`forward_models`: a bad shape, option value, measurement or configuration.

    A ``ValueError``, so ``except ValueError`` catches it too::

        from forward_models import Gaussian, ForwardModelError

        try:
            Gaussian(-1.0)
        except ForwardModelError as e:
            print(e)
    """
